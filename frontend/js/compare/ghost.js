// The ghost: a finished run pinned as a faint line behind the single view's live run (its
// smoothed loss, from GET /api/runs/{id}/points), to see whether the live one does better. The
// select lists the finished runs (GET /api/runs?status=finished), asked again when it is opened.

import { request } from "../api.js";
import { bucketMean, bucketsAcross } from "../chartkit/thin.js";
import { int } from "../format.js";
import { notify } from "../notify.js";
import { invalidate } from "../render.js";
import { Ema } from "../smoothing.js";
import { state } from "../state.js";
import { examplesMapper } from "../xaxis.js";

const GHOST_COLOR = "rgba(216, 222, 234, 0.38)";
const PX_PER_POINT = 2;

const g = state.compare.ghost;
const $ = (id) => document.getElementById(id);

export function initGhost() {
  const select = $("ghost");
  select.addEventListener("focus", refreshChoices);
  select.addEventListener("change", () => pin(select.value));
  refreshChoices();
}

async function refreshChoices() {
  try {
    g.choices = await request("GET", "/api/runs?status=finished&limit=100");
  } catch (e) {
    g.error = e.message;
    return;
  }
  const select = $("ghost");
  const keep = g.id;
  select.replaceChildren(
    Object.assign(document.createElement("option"), { value: "", textContent: "none" }),
    ...g.choices.map((r) => Object.assign(document.createElement("option"), { value: r.id, textContent: `${r.name} · ${int(r.step)} steps` })),
  );
  select.value = g.choices.some((r) => r.id === keep) ? keep : "";
}

async function pin(id) {
  g.id = id;
  g.points = null;
  if (id) {
    try {
      const p = await request("GET", `/api/runs/${encodeURIComponent(id)}/points?points=2000`);
      if (g.id !== id) return; // another was chosen meanwhile
      const run = g.choices.find((r) => r.id === id);
      g.points = { ...p, name: run ? run.name : id };
    } catch (e) {
      notify(`ghost: ${e.message}`, "error");
      g.id = "";
      $("ghost").value = "";
    }
  }
  invalidate({ chart: true, urgent: true });
}

/** What the loss chart's key of "what it shows" needs of the ghost. */
export const ghostKey = () => (g.points ? g.id : "");

/**
 * The ghost's trace for the loss chart (none when no run is pinned): its smoothed loss, by its
 * own steps, examples seen (its own batch sizes) or training time, thinned to the plot's width.
 */
export function ghostTraces(xAxis, range, width) {
  const p = g.points;
  if (!p || !p.step.length) return [];
  const ema = new Ema(state.view.smoothing);
  let X = (i) => p.step[i];
  if (xAxis === "examples" && p.changes.length) {
    const ex = examplesMapper(p.changes[0].batch_size, p.changes);
    X = (i) => ex(p.step[i]);
  } else if (xAxis === "time") {
    X = (i) => p.time[i];
  }
  const x = [], y = [];
  for (let i = 0; i < p.step.length; i++) {
    if (p.loss[i] === null || !Number.isFinite(p.loss[i]) || X(i) === null) continue;
    x.push(X(i));
    y.push(ema.push(p.step[i], p.loss[i]));
  }
  const line = bucketMean({ x, y }, range[0], range[1], bucketsAcross(width, PX_PER_POINT, 50));
  return [{
    type: "scatter", mode: "lines", name: `ghost: ${p.name}`, x: line.x, y: line.y,
    line: { color: GHOST_COLOR, width: 1.5 }, hovertemplate: `ghost: ${p.name}<br>%{y:.4f}<extra></extra>`,
  }];
}
