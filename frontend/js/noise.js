// The gradient noise scale B_noise (McCandlish et al. 2018), estimated by the server at each
// evaluation: a small plot against step (log y) with the batch size in effect for comparison,
// and "B_noise ≈ N" next to the batch-size slider.

import * as fmt from "./format.js";
import { axis, baseLayout, COLORS, logAxis, logRange, react, SMALL_CONFIG } from "./plots.js";
import { state } from "./state.js";

const HINT = "batches much larger than ~B_noise buy little per example";
const MARKERS_MAX = 60; // markers only when this few points (SVG markers are what makes a redraw slow)

export function renderNoiseValue() {
  const el = document.getElementById("noise-value");
  const last = state.noise[state.noise.length - 1];
  const text = last ? `B_noise ≈ ${fmt.approx(last.b_noise)}` : "B_noise: at the next evaluation";
  if (el.textContent !== text) el.textContent = text;
  if (last) {
    el.dataset.value = String(last.b_noise);
    el.title = `gradient noise scale at step ${fmt.int(last.step)}: ${HINT}`;
  } else {
    delete el.dataset.value;
    el.title = HINT;
  }
}

/** The plot's right edge: the run so far, at least its first 1,000 steps. */
function xEnd(x) {
  return Math.max(x.length ? x[x.length - 1] : 0, state.step, 1000);
}

export function drawNoise() {
  const x = state.noise.map((p) => p.step);
  const y = state.noise.map((p) => p.b_noise);
  const traces = [
    {
      type: "scatter",
      mode: x.length <= MARKERS_MAX ? "lines+markers" : "lines",
      name: "B_noise",
      x,
      y,
      line: { color: COLORS.noise, width: 1.5 },
      marker: { color: COLORS.noise, size: 5 },
      hovertemplate: "step %{x:,}<br>B_noise %{y:,.0f}<extra></extra>",
    },
  ];
  // The batch size over the same steps, for comparison: one line per stretch of the same size.
  const h = state.hparams;
  if (h && x.length) {
    const bx = [], by = [];
    let batch = state.initialHparams ? state.initialHparams.batch_size : h.batch_size;
    let from = x[0];
    for (const c of state.changes) {
      if (c.batch_size === batch) continue;
      if (c.step > from) {
        bx.push(from, c.step);
        by.push(batch, batch);
        from = c.step;
      }
      batch = c.batch_size;
    }
    bx.push(from, xEnd(x));
    by.push(batch, batch);
    traces.push({
      type: "scatter",
      mode: "lines",
      name: "batch size",
      x: bx,
      y: by,
      line: { color: COLORS.muted, width: 1.2, dash: "dash" },
      hovertemplate: "batch size %{y:,}<extra></extra>",
    });
  }
  react(
    "noise-chart",
    traces,
    baseLayout({
      datarevision: `${x.length}-${x[x.length - 1]}-${h ? h.batch_size : 0}`,
      margin: { l: 50, r: 12, t: 22, b: 36 }, // the axes' automargin widens these to fit the tick labels
      showlegend: true,
      legend: { orientation: "h", x: 0, y: 1, xanchor: "left", yanchor: "bottom", bgcolor: "rgba(0,0,0,0)", font: { size: 11 } },
      xaxis: axis({
        type: "linear",
        title: { text: "step" },
        hoverformat: ",d",
        range: [-0.02 * xEnd(x), 1.02 * xEnd(x)], // up to the current step (redrawn as the run goes on)
        autorange: false,
        automargin: true,
      }),
      yaxis: axis({
        title: { text: "B_noise (log)", standoff: 8 },
        automargin: true, // the title beside the tick labels ("1,000"), not on them
        ...logAxis(logRange(traces.flatMap((t) => t.y), 0.1, 1), (v) => fmt.int(v)),
      }),
      annotations: x.length
        ? []
        : [{ xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false, text: "at the first evaluation", font: { color: COLORS.muted } }],
    }),
    SMALL_CONFIG,
  );
}
