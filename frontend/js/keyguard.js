// Home, End, PageUp and PageDown move a slider to an end, or a tenth of its range, in one press:
// on a run that trains, End on the learning rate was lr 10 at once, and the run diverged before
// the hand came back. On the lr and batch sliders of a run that trains (or waits in the queue),
// those keys ask first, as max steps at or below the current step does; the arrow keys still step.
// Asked and accepted, the slider moves and sends as if the key had done it (its input and change
// events: controls.js); refused, nothing changes.

import * as fmt from "./format.js";
import { state } from "./state.js";

const BIG_KEYS = new Set(["Home", "End", "PageUp", "PageDown"]);
const LIVE = new Set(["running", "queued"]);

const SLIDERS = {
  "lr-slider": { what: "the learning rate", show: (v) => fmt.lr(Number((10 ** v).toPrecision(3))) },
  "batch-slider": { what: "the batch size", show: (v) => fmt.int(2 ** v) },
};

/** Where the key would put the slider (a range input's own rule: PageUp/PageDown a tenth of the
 *  range, on its steps). */
function landing(el, key) {
  const min = el.min === "" ? 0 : Number(el.min), max = el.max === "" ? 100 : Number(el.max); // a range's defaults
  const step = Number(el.step) || 1;
  const value = Number(el.value);
  if (key === "Home") return min;
  if (key === "End") return max;
  const jump = Math.max(step, (max - min) / 10) * (key === "PageUp" ? 1 : -1);
  const snapped = min + Math.round((value + jump - min) / step) * step;
  return Number(Math.min(max, Math.max(min, snapped)).toFixed(6));
}

function guard(event) {
  const el = event.currentTarget;
  if (!BIG_KEYS.has(event.key) || !LIVE.has(state.status)) return;
  event.preventDefault();
  const to = landing(el, event.key);
  if (to === Number(el.value)) return;
  const { what, show } = SLIDERS[el.id];
  const text = `The run is training: set ${what} from ${show(Number(el.value))} to ${show(to)} at once?`;
  if (!window.confirm(text)) return;
  el.value = String(to);
  el.dispatchEvent(new Event("input", { bubbles: true }));
  el.dispatchEvent(new Event("change", { bubbles: true }));
}

export function guardSliders() {
  for (const id of Object.keys(SLIDERS)) document.getElementById(id).addEventListener("keydown", guard);
}
