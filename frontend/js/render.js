// Redraws, at most once per animation frame, never once per message: the figures and controls
// whenever something changed, and each plot only when its own data changed, at most every
// INTERVALS_MS[name] (Plotly.react is the expensive part). Hidden tabs get no animation frames,
// so they do not draw at all.
//
// The main thread must stay free for the user (a click on Sample, a slider) however slow the
// machine and however long the run: a frame draws at most ONE plot (so no task holds two
// Plotly.react calls), and a plot that takes long to draw is drawn less often: at most SHARE[name]
// of the time goes to it (its measured draw time / SHARE, when longer than its interval). A plot
// whose draw function returns false drew nothing (nothing visible changed) and is asked again
// after its interval.

// Each Plotly.react costs tens of milliseconds however few its points (axes, text, DOM), so
// how often each plot may redraw is what keeps the page responsive while a run streams.
const INTERVALS_MS = {
  loss: 200, // 5 redraws a second: the live curve
  lr: 400, // follows the loss chart's x range
  lrfind: 150, // only while a sweep streams
  embedding: 1000, // each redraw animates the points for ~350 ms
  noise: 2000, // a point per evaluation
  next: 0, // answers to typing: at once
};
const SHARE = { loss: 0.06, lr: 0.03, lrfind: 0.15, embedding: 0.03, noise: 0.02, next: 1 };
const COST_WEIGHT = 0.3; // of the newest draw time in the running estimate
// However slow the machine, a plot is at most this late: the live curve keeps moving.
const MAX_INTERVAL_MS = { loss: 1500, lr: 3000 };
const MAX_INTERVAL_DEFAULT_MS = 5000;
const HOLD_MAX_MS = 2000; // a request the user waits for holds the plots back at most this long

let uiRenderer = () => {};
const chartRenderers = {};
let uiDirty = false;
const dirty = new Set();
const lastDrawn = {};
const cost = {}; // each plot's draw time, ms (a moving average; the first draw, which builds the plot, does not count)
const draws = {};
let frame = 0;
let timer = 0; // a plot waits for its interval: no frames meanwhile (they cost even when empty)
let holding = 0; // requests the user waits for: no plot draws meanwhile, so their answer shows at once

/** ui(): figures and controls; charts: {name: draw()}, beside those set before, or instead of
 *  them (`only`: another view takes the page). */
export function setRenderers({ ui, charts, only = false }) {
  if (ui) uiRenderer = ui;
  if (only) {
    for (const name of Object.keys(chartRenderers)) delete chartRenderers[name];
    dirty.clear();
  }
  Object.assign(chartRenderers, charts);
}

/**
 * Ask for a redraw: of the figures and controls, and of the named plots. `chart: true` names
 * the step-based pair: the loss chart and the learning-rate plot. `urgent`: the user acted (a
 * zoom, another x axis): those plots redraw on the next frames, whatever their interval.
 */
export function invalidate({ chart = false, charts = [], urgent = false } = {}) {
  uiDirty = true;
  const names = chart ? ["loss", "lr", ...charts] : charts;
  for (const name of names) {
    dirty.add(name);
    if (urgent) lastDrawn[name] = -Infinity;
  }
  if (!frame) frame = requestAnimationFrame(draw);
}

/**
 * Hold the plots back while the user waits for `promise` (a Sample, a test loss): a draw that
 * starts just before the answer comes would keep it from the screen for tens of milliseconds.
 * Returns the promise.
 */
export function whileWaiting(promise) {
  holding++;
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    holding--;
    schedule(performance.now());
  };
  const timer = setTimeout(release, HOLD_MAX_MS);
  const done = () => {
    clearTimeout(timer);
    release();
  };
  promise.then(done, done);
  return promise;
}

/** How long a plot waits after its last draw. */
function interval(name) {
  const base = INTERVALS_MS[name] ?? 150;
  const most = MAX_INTERVAL_MS[name] ?? MAX_INTERVAL_DEFAULT_MS;
  return Math.max(base, Math.min(most, (cost[name] ?? 0) / (SHARE[name] ?? 0.1)));
}

function draw(now) {
  frame = 0;
  if (uiDirty) {
    uiDirty = false;
    uiRenderer();
  }
  if (holding) return; // whileWaiting() asks again when it lets go
  // the plot most overdue, if any is due
  let pick = null;
  let late = -Infinity;
  for (const name of dirty) {
    const over = now - (lastDrawn[name] ?? -Infinity) - interval(name);
    if (over >= 0 && over > late) [pick, late] = [name, over];
  }
  if (pick !== null) {
    dirty.delete(pick);
    lastDrawn[pick] = now;
    const render = chartRenderers[pick];
    if (render) {
      const t0 = performance.now();
      if (render() === false) {
        dirty.add(pick); // nothing visible changed yet: ask again after the interval
      } else if ((draws[pick] = (draws[pick] ?? 0) + 1) > 1) {
        const ms = performance.now() - t0;
        cost[pick] = cost[pick] === undefined ? ms : (1 - COST_WEIGHT) * cost[pick] + COST_WEIGHT * ms;
      }
    }
  }
  schedule(now);
}

/** The next frame for the plots still dirty: at once if one is due, else when the first is. */
function schedule(now) {
  if (!dirty.size || frame || holding) return;
  let wait = Infinity;
  for (const name of dirty) wait = Math.min(wait, (lastDrawn[name] ?? -Infinity) + interval(name) - now);
  clearTimeout(timer);
  if (wait <= 0) {
    frame = requestAnimationFrame(draw);
  } else {
    timer = setTimeout(() => {
      if (!frame) frame = requestAnimationFrame(draw);
    }, wait);
  }
}
