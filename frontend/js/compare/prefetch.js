// The compare view's first answers, asked for as the page starts: every run's record and points
// in one request (GET /api/runs/points), which the page itself has sent already when the server
// wrote a preload link for it (the view's address loaded); else (the view opened from the single
// view) it is sent here. index.html loads this module `async`: it runs as soon as it is here,
// before main.js. view.js and series.js take these answers for their first loads.

import { ApiError, request } from "../api.js";
import { readAddress } from "./address.js";

const MARGIN_X = 74; // the compare chart's plot margins, left and right (chartkit/axes.js LOSS_MARGIN)
const FRAME_X = 74; // around #compare-chart: the view's padding and its panel's (compare.css, app.css)
const MAX_WIDTH = 1600; // .compare's max-width
/** The plot's width in the widest layout (api/pages.py's WIDEST_PLOT_PX, for its preload link). */
export const WIDEST_PLOT = MAX_WIDTH - FRAME_X - MARGIN_X;

/** Points per run to ask for: a minimum and a maximum per bucket, a bucket every 2 px for a few
 *  runs, every 4 px for many (a redraw's cost grows with the points). */
export function pointsPerRun(plotWidth, runs) {
  const px = runs <= 4 ? 2 : runs <= 10 ? 3 : 4;
  return 2 * Math.round(plotWidth / px);
}

const asked = new Map(); // "record ID" | "points ID" -> the promise of its answer

/** Ask for the runs the address names (the compare view's), all in one request. */
export function prefetchCompare() {
  const where = readAddress();
  if (where.mode !== "compare" || !where.ids.length) return;
  const all = request("GET", preloaded(where.ids) || pointsUrl(where.ids));
  for (const id of where.ids) {
    const one = all.then(({ runs }) => {
      const found = runs.find((r) => r.run.id === id);
      if (!found) throw new ApiError(`404: no run with id '${id}'`, 404, `no run with id '${id}'`);
      return found;
    });
    asked.set(`record ${id}`, one.then((r) => r.run));
    asked.set(`points ${id}`, one.then((r) => r.points));
  }
  for (const p of asked.values()) p.catch(() => {}); // whoever takes it handles its error
}

/** The request of the page's `<link rel=preload>` for these runs, sent as the page's first lines
 *  came (the server writes it for the compare view's address: api/pages.py), or null. */
function preloaded(ids) {
  const link = document.querySelector('link[rel="preload"][as="fetch"][data-ids]');
  return link && link.dataset.ids === ids.join(",") ? link.href : null;
}

function pointsUrl(ids) {
  // the chart is not laid out yet: its width from the window's, as compare.css will make it
  const width = Math.max(100, Math.min(window.innerWidth, MAX_WIDTH) - FRAME_X - MARGIN_X);
  const q = new URLSearchParams({ ids: ids.join(","), points: String(pointsPerRun(width, ids.length)) });
  return `/api/runs/points?${q}`;
}

prefetchCompare();

/** The answer asked for early under `key`, once (later asks go to the server), or null. */
export function take(key) {
  const p = asked.get(key) || null;
  asked.delete(key);
  return p;
}
