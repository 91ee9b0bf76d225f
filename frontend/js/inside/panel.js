// The Inside panel (issue 23: makemore part 3's diagnostics, live): a <details> under the loss
// chart. Its figures redraw from the run's "diag" and "gradcos" messages (and the snapshot's
// latest ones), through the page's redraw scheduler (render.js) as one plot, "inside", that
// draws one figure per frame, each figure at most every MIN_INTERVAL_MS and only when what it
// shows changed. Closed, the panel does no work: messages are kept, nothing is drawn.

import { invalidate, setRenderers } from "../render.js";
import { drawGradcos, drawGradHist, drawTanh } from "./hist.js";
import { drawSaturation, drawUpdateData, stepsKey } from "./steps.js";
import { inside, addPoint, loadSnapshot, setGradcos } from "./store.js";
import { forgetSuggestion, initSuggest, renderSuggestion } from "./suggest.js";
import { renderSummaries, renderTable } from "./text.js";

const $ = (id) => document.getElementById(id);
const CLOSED_KEY = "makemore-live.inside.closed";
const MIN_INTERVAL_MS = 500; // each figure at most twice a second
const TIMES_KEPT = 200;

// figure -> [draw, what it shows as a key]
const FIGURES = {
  ud: [drawUpdateData, stepsKey],
  sat: [drawSaturation, stepsKey],
  tanh: [drawTanh, () => `${inside.version.hist}`],
  grad: [drawGradHist, () => `${inside.version.hist}`],
  gradcos: [drawGradcos, () => `${inside.version.gradcos}`],
};
const drawnKey = {};
const drawnAt = {};
export const drawTimes = []; // the last draws: {name, ms} (Plotly.react's synchronous part)

export function isOpen() {
  return !!$("inside")?.open;
}

/** Draw the most overdue figure whose content changed; ask again while others wait. */
function drawInside() {
  if (!isOpen()) return true;
  renderTable();
  renderSummaries();
  const now = performance.now();
  let pick = null;
  let wait = false;
  for (const [name, [, key]] of Object.entries(FIGURES)) {
    if (drawnKey[name] === key()) continue;
    if (now - (drawnAt[name] ?? -Infinity) < MIN_INTERVAL_MS) {
      wait = true;
      continue;
    }
    if (pick === null || (drawnAt[name] ?? -Infinity) < (drawnAt[pick] ?? -Infinity)) pick = name;
  }
  if (pick === null) return wait ? false : true; // false: asked again after the scheduler's interval
  const [draw, key] = FIGURES[pick];
  drawnKey[pick] = key();
  drawnAt[pick] = now;
  const t0 = performance.now();
  draw();
  drawTimes.push({ name: pick, ms: performance.now() - t0 });
  if (drawTimes.length > TIMES_KEPT) drawTimes.shift();
  // the others still to draw: another frame (one Plotly.react per frame, as render.js wants)
  if (Object.entries(FIGURES).some(([name, [, k]]) => drawnKey[name] !== k())) return false;
  return true;
}

const ask = () => {
  if (isOpen()) invalidate({ charts: ["inside"] });
};

/**
 * A message of the run's socket: "diag" and "gradcos" are the panel's (true: taken); a snapshot's
 * diagnostics are read, and a change of hyperparameters marks the over-steps figures.
 */
export function insideMessage(msg) {
  switch (msg.type) {
    case "diag":
      addPoint(msg.point ?? msg);
      ask();
      return true;
    case "gradcos":
      setGradcos(msg);
      ask();
      return true;
    case "snapshot":
      if (msg.run?.id !== inside.runId) forgetSuggestion();
      loadSnapshot(msg);
      ask();
      return false;
    case "hparams":
    case "status":
      ask();
      return false;
    default:
      return false;
  }
}

function remember(closed) {
  try {
    sessionStorage.setItem(CLOSED_KEY, closed ? "1" : "0");
  } catch {
    // no storage (private mode): the panel opens as the page sets it
  }
}

function closedBefore() {
  try {
    return sessionStorage.getItem(CLOSED_KEY);
  } catch {
    return null;
  }
}

export function initInside() {
  const details = $("inside");
  if (!details) return;
  const saved = closedBefore();
  if (saved !== null) details.open = saved !== "1";
  setRenderers({ charts: { inside: drawInside } });
  details.addEventListener("toggle", () => {
    remember(!details.open);
    if (details.open) {
      // drawn while closed: nothing; everything at once now (its plots were 0 wide meanwhile)
      for (const k of Object.keys(drawnKey)) delete drawnKey[k];
      for (const k of Object.keys(drawnAt)) delete drawnAt[k];
      invalidate({ charts: ["inside"], urgent: true });
    }
  });
  initSuggest();
  renderSuggestion();
  ask();
}

/** With the page's controls: the Apply button follows the connection. */
export function renderInside() {
  if (isOpen()) renderSuggestion();
}
