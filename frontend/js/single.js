// The single view (/, /?run=ID): its controls and panels, the run's websocket, the redraw
// scheduler's renderers. main.js loads this module only for this view: the compare view's first
// visit does not fetch and compile the ~20 modules below that it never uses.

import { initA11y, renderA11y } from "./a11y.js";
import { connectRun, initNotices, leaveSingle, renderNotices } from "./address.js";
import { initBranch } from "./branch.js";
import { drawChart, drawLrChart, initLegend, renderLegend } from "./chart.js";
import { initControls, renderControls } from "./controls.js";
import { initDatasets, renderUpload } from "./datasets.js";
import { drawEmbedding, renderEmbeddingInfo } from "./embedding.js";
import { handleMessage } from "./events.js";
import { initInside, insideMessage, renderInside } from "./inside/panel.js";
import { renderFigures } from "./figures.js";
import { drawLrFind, initLrFind, onSnapshotSweep, renderLrFind } from "./lrfind.js";
import { initNewRun } from "./newrun.js";
import { initOverfit, renderOverfit } from "./overfit.js";
import { drawNoise, renderNoiseValue } from "./noise.js";
import { notify } from "./notify.js";
import { drawNext, initReadout, modelChanged, renderReadout } from "./readout.js";
import { invalidate, setRenderers } from "./render.js";
import { initRuns, renderRuns, stopRuns } from "./runs.js";
import { initSamples, renderSamples } from "./samples.js";
import { initGhost } from "./compare/ghost.js";
import { prefetchCompare } from "./compare/prefetch.js";
import { startCompare } from "./compare/view.js";
import { state } from "./state.js";
import { loadPlotly } from "./vendor.js";

let samplesShown = null;

const RENDERERS = {
  ui() {
    renderFigures();
    renderControls();
    renderLegend();
    renderLrFind();
    renderEmbeddingInfo();
    renderNoiseValue();
    renderReadout();
    renderUpload();
    renderOverfit();
    renderRuns();
    renderNotices();
    renderA11y();
    renderInside();
    if (samplesShown !== state.samples) {
      samplesShown = state.samples; // replaced by a new draw, or a new run
      renderSamples();
    }
  },
  charts: {
    loss: drawChart,
    lr: drawLrChart,
    lrfind: drawLrFind,
    embedding: drawEmbedding,
    noise: drawNoise,
    next: drawNext,
  },
};

/** The few messages that call for a request. */
function followUp(msg, runBefore) {
  if (msg.type === "snapshot") {
    onSnapshotSweep(msg.lrfind);
    modelChanged({ now: !runBefore || runBefore !== msg.run.id });
  } else if (msg.type === "eval") {
    modelChanged();
  }
}

export function startSingle() {
  setRenderers(RENDERERS);
  loadPlotly(); // at once: every panel of this view is a plot (the compare view asks after its first picture)
  initControls();
  initLegend();
  initSamples();
  initLrFind();
  initReadout();
  initDatasets();
  initNewRun();
  initOverfit();
  initBranch();
  initNotices();
  initRuns();
  initGhost();
  initA11y();
  initInside();
  connectRun({
    message(msg) {
      if (insideMessage(msg)) return; // diag, gradcos: the Inside panel's own
      const runBefore = state.run && state.run.id;
      handleMessage(msg);
      followUp(msg, runBefore);
    },
    change: () => invalidate(),
    closed(event, willRetry) {
      if (!willRetry) notify(`the server closed the connection: ${event.reason || event.code}`, "error", 60_000);
    },
  });
  invalidate({ chart: true, charts: ["lrfind", "embedding", "noise", "next"] });
  document.addEventListener("click", openCompareHere);
}

/** The compare view from the single view's links (the runs list's Compare, Compare & sweep)
 *  opens in this page: plotly.js and every module are running already, so only the runs' points
 *  are to come. A click that asks for a new tab or window goes on as a link. */
function openCompareHere(event) {
  const link = event.target.closest("a#compare-link[href], a#open-compare[href]");
  if (!link || event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  document.removeEventListener("click", openCompareHere);
  leaveSingle();
  stopRuns();
  history.pushState(null, "", link.getAttribute("href"));
  prefetchCompare();
  startCompare();
}
