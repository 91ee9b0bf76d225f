// The compare view's "series" select: beside the loss chart, one of the Inside panel's series over
// steps (update:data of a parameter, the tanh saturation, dead units, grad:data of W1) overlaid
// across the runs compared, from GET /api/runs/{id}/diagnostics. "loss" shows the loss chart alone.

import { request } from "../api.js";
import { pointsOf as asPoints } from "../inside/store.js";
import { axis, baseLayout, COLORS, react, SMALL_CONFIG } from "../plots.js";
import { state } from "../state.js";
import { colorOf } from "./chart.js";

const $ = (id) => document.getElementById(id);
const REFRESH_MS = 5000; // the runs that train go on: their points asked again this often while shown

/** value -> {label, axis title, y of a point, guide (y of a dashed line) or none}. */
export const DIAG_SERIES = {
  ud_W1: { label: "update:data W1", title: "log10 update:data", y: (p) => p.params?.W1?.update_data, guide: -3 },
  ud_W2: { label: "update:data W2", title: "log10 update:data", y: (p) => p.params?.W2?.update_data, guide: -3 },
  ud_C: { label: "update:data C", title: "log10 update:data", y: (p) => p.params?.C?.update_data, guide: -3 },
  saturation: { label: "saturation", title: "saturated % (|tanh| > 0.97)", y: (p) => (Number.isFinite(p.hidden?.saturated) ? 100 * p.hidden.saturated : null) },
  dead: { label: "dead units", title: "dead units", y: (p) => p.hidden?.dead },
  gd_W1: { label: "grad:data W1", title: "grad:data W1", y: (p) => p.params?.W1?.grad_data },
};

const points = {}; // run id -> [point], as the endpoint gave them
let shown = "loss";
let timer = 0;
let generation = 0;

/** The endpoint's answer as a list of points: columns or a list, bare or under points/diag/scalars. */
function pointsOf(answer) {
  const data = answer && !Array.isArray(answer) && !Array.isArray(answer.step) ? (answer.points ?? answer.diag ?? answer.scalars) : answer;
  return asPoints(data);
}

async function fetchAll() {
  const g = ++generation;
  const ids = [...state.compare.ids];
  await Promise.all(
    ids.map(async (id) => {
      try {
        points[id] = pointsOf(await request("GET", `/api/runs/${encodeURIComponent(id)}/diagnostics`));
      } catch {
        points[id] = []; // a run without diagnostics (stored before them): no line
      }
    }),
  );
  if (g === generation && shown !== "loss") draw();
}

function draw() {
  const s = DIAG_SERIES[shown];
  const traces = state.compare.ids
    .filter((id) => points[id]?.length)
    .map((id) => {
      const run = state.compare.runs[id];
      const list = points[id];
      return {
        type: "scatter",
        mode: list.length <= 30 ? "lines+markers" : "lines",
        name: run?.name || id,
        x: list.map((p) => p.step),
        y: list.map((p) => s.y(p) ?? null),
        line: { color: colorOf(id), width: 1.6 },
        marker: { size: 4, color: colorOf(id) },
        meta: id,
        hovertemplate: `%{fullData.name}: %{y:.3g} at step %{x:,}<extra></extra>`,
      };
    });
  const shapes = Number.isFinite(s.guide)
    ? [{ type: "line", xref: "paper", x0: 0, x1: 1, yref: "y", y0: s.guide, y1: s.guide, line: { color: COLORS.mark, width: 1.2, dash: "dash" } }]
    : [];
  const el = $("compare-diag");
  el.setAttribute("aria-label", `${s.label} over steps for ${traces.length} of the ${state.compare.ids.length} runs compared`);
  react(
    "compare-diag",
    traces,
    baseLayout({
      margin: { l: 58, r: 16, t: 24, b: 40 },
      showlegend: true,
      legend: { orientation: "h", x: 0, y: 1, yanchor: "bottom", bgcolor: "rgba(0,0,0,0)", font: { size: 11 } },
      xaxis: axis({ title: { text: "step" }, hoverformat: ",d" }),
      yaxis: axis({ title: { text: s.title } }),
      shapes,
      annotations: traces.length ? [] : [{ xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false, text: "no diagnostics for these runs", font: { color: COLORS.muted } }],
    }),
    SMALL_CONFIG,
  );
}

function choose(value) {
  shown = DIAG_SERIES[value] ? value : "loss";
  clearInterval(timer);
  $("compare-diag").hidden = shown === "loss";
  if (shown === "loss") return;
  fetchAll();
  timer = setInterval(fetchAll, REFRESH_MS);
}

export function initDiagSeries() {
  const select = $("compare-series");
  if (!select) return;
  for (const [value, s] of Object.entries(DIAG_SERIES)) select.append(new Option(s.label, value));
  select.addEventListener("change", () => choose(select.value));
  choose(select.value);
}
