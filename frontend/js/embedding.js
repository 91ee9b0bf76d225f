// The embedding map: each character's learned embedding in 2-D (raw when n_embd is 2, else the
// first two principal components, oriented like the previous map by the server), as the
// lecture's scatter. Redrawn at each `embeddings` message; the points glide to their new places.

import * as fmt from "./format.js";
import { axis, baseLayout, COLORS, react, SMALL_CONFIG } from "./plots.js";
import { state } from "./state.js";

const VOWELS = new Set(["a", "e", "i", "o", "u", "y"]);
const TRANSITION_MS = 350;
const MARGIN = 0.1; // of the points' spread, each side of each axis
const KEEP = 1.25; // a range is kept while at most this much wider than the points need

let drawn = null; // the map on the plot
let drawnRange = null;

function colorOf(c) {
  if (c === ".") return COLORS.mark;
  return VOWELS.has(c) ? COLORS.dev : COLORS.smooth;
}

/**
 * Each axis fitted to the points, with a little margin (MARGIN of the spread each side: room for
 * the markers), kept while the points stay inside it and fill most of it (no jitter as they
 * move). Not a square: one far letter would leave the rest a blob in a corner.
 */
function ranges(m) {
  const fit = (vs, kept) => {
    const v = vs.filter(Number.isFinite);
    const lo = Math.min(...v), hi = Math.max(...v);
    const pad = Math.max(hi - lo, 1e-6) * MARGIN;
    const want = [lo - pad, hi + pad];
    if (kept && lo >= kept[0] && hi <= kept[1] && kept[1] - kept[0] <= KEEP * (want[1] - want[0])) return kept;
    return want;
  };
  if (!m.x.some(Number.isFinite)) return null;
  return { x: fit(m.x, drawnRange && drawnRange.x), y: fit(m.y, drawnRange && drawnRange.y) };
}

export function renderEmbeddingInfo() {
  const m = state.embeddings;
  const el = document.getElementById("embedding-info");
  let text = "no evaluation yet";
  if (m && state.run) {
    const d = state.run.config.n_embd;
    text =
      m.method === "raw"
        ? `raw 2-d embeddings at step ${fmt.int(m.step)}`
        : `PCA: the first 2 principal components of the ${d}-d embeddings, at step ${fmt.int(m.step)}`;
  }
  if (el.textContent !== text) el.textContent = text;
  el.dataset.method = m ? m.method : "";
  el.dataset.step = m ? String(m.step) : "";
}

export function drawEmbedding() {
  const m = state.embeddings;
  if (m === drawn && m !== null) return; // nothing new
  const animate = drawn !== null && m !== null && drawn.chars.length === m.chars.length;
  drawn = m;
  const range = m ? ranges(m) : null;
  drawnRange = range;
  const trace = {
    type: "scatter",
    mode: "markers+text",
    name: "characters",
    x: m ? m.x : [],
    y: m ? m.y : [],
    text: m ? m.chars : [],
    textposition: "middle center",
    textfont: { color: "#0f1420", size: 13, family: "ui-monospace, Menlo, Consolas, monospace" },
    marker: { size: 22, color: m ? m.chars.map(colorOf) : [], line: { color: "rgba(15,20,32,0.6)", width: 1 } },
    hovertemplate: "“%{text}”<br>(%{x:.3f}, %{y:.3f})<extra></extra>",
    cliponaxis: false,
  };
  const label = m && m.method === "raw" ? ["embedding dim 0", "embedding dim 1"] : ["PC 1", "PC 2"];
  react(
    "embedding-chart",
    [trace],
    baseLayout({
      datarevision: m ? m.step : 0,
      margin: { l: 44, r: 12, t: 8, b: 36 },
      xaxis: axis({ type: "linear", title: { text: label[0] }, ...(range ? { range: range.x, autorange: false } : {}) }),
      yaxis: axis({ type: "linear", title: { text: label[1] }, ...(range ? { range: range.y, autorange: false } : {}) }),
      transition: animate ? { duration: TRANSITION_MS, easing: "cubic-in-out" } : { duration: 0 },
      annotations: m
        ? []
        : [{ xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false, text: "at the first evaluation", font: { color: COLORS.muted } }],
    }),
    SMALL_CONFIG,
  );
}
