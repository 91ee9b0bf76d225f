// Wires the page together: controls and samples panel, the websocket, the redraw scheduler.

import { drawChart } from "./chart.js";
import { initControls, renderControls } from "./controls.js";
import { handleMessage } from "./events.js";
import { renderFigures } from "./figures.js";
import { notify } from "./notify.js";
import { invalidate, setRenderers } from "./render.js";
import { initSamples, renderSamples } from "./samples.js";
import { connect } from "./socket.js";
import { state } from "./state.js";

let samplesShown = null;

setRenderers({
  ui() {
    renderFigures();
    renderControls();
    if (samplesShown !== state.samples.names) {
      samplesShown = state.samples.names; // a new run clears them
      renderSamples();
    }
  },
  chart: drawChart,
});

if (!window.Plotly) {
  notify("plotly.js did not load (/vendor/plotly.min.js): the chart cannot be drawn", "error", 60_000);
}

initControls();
initSamples();
connect({
  message: handleMessage,
  change: () => invalidate(),
  closed(event, willRetry) {
    if (!willRetry) notify(`the server closed the connection: ${event.reason || event.code}`, "error", 60_000);
  },
});
invalidate({ chart: true });
