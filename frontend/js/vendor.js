// plotly.js, the one script we did not write (served from /vendor/, never a CDN). It is 4.6 MB of
// classic script: on a slow CPU it holds the main thread for seconds, which nothing else of the
// page can use meanwhile (not even to find its own modules). So it is loaded when a view asks:
// the single view at once, the compare view once its first picture is drawn (js/preview.js draws
// the plots until then). index.html preloads its bytes, so asking costs no download.

const SRC = "/vendor/plotly.min.js";

let asked = null;
let settle = () => {};
/** Resolves with window.Plotly once plotly.js has run, or with null when it could not load. */
export const plotlyReady = new Promise((resolve) => {
  settle = resolve;
});

/** Run plotly.js (once; later calls return the same promise). */
export function loadPlotly() {
  if (asked) return asked;
  asked = new Promise((resolve) => {
    if (window.Plotly) {
      resolve(window.Plotly);
      return;
    }
    const script = document.createElement("script");
    script.src = SRC;
    script.onload = () => resolve(window.Plotly || null);
    script.onerror = () => resolve(null);
    document.head.append(script);
  });
  asked.then(settle);
  return asked;
}

/** `f` after the next frame has been painted (a task queued from the frame's callbacks). */
export function afterPaint(f) {
  requestAnimationFrame(() => setTimeout(f, 0));
}
