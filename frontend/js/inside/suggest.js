// "Suggest lr": the learning rate that would bring W1's update:data to the lecture's 1e-3, shown
// as a suggestion and applied only when asked (a second click), as the finder's is.

import { setHparam } from "../controls.js";
import * as fmt from "../format.js";
import { invalidate } from "../render.js";
import { state } from "../state.js";
import { GUIDE } from "./steps.js";
import { recentUd } from "./store.js";

const $ = (id) => document.getElementById(id);
const POINTS = 5; // update:data averaged (in log10) over the newest points: one step's is noisy
const LR_MIN = 1e-6, LR_MAX = 10; // the server's bounds on lr

export const ASSUMES =
  "Assumes the update's size scales with the learning rate (SGD: the update is lr × gradient; " +
  "momentum and Adam: proportional to lr at the same gradients) and that the weights and gradients " +
  `stay about as they are. Uses W1's log10 update:data averaged over the last ${POINTS} points ` +
  "and the base lr (a schedule's factor applies on top of it).";

let suggestion = null; // {lr, from, ud, count}

/** lr_new = lr × 10^(guide − update:data of W1), within the server's bounds; null when unknown. */
export function suggestLr(lr, ud) {
  if (!(lr > 0) || !Number.isFinite(ud)) return null;
  return Math.min(LR_MAX, Math.max(LR_MIN, lr * 10 ** (GUIDE - ud)));
}

function suggest() {
  const ud = recentUd("W1", POINTS);
  const lr = state.hparams?.lr;
  const value = ud ? suggestLr(lr, ud.value) : null;
  suggestion = value === null ? { lr: null } : { lr: Number(value.toPrecision(3)), from: lr, ud: ud.value, count: ud.count };
  renderSuggestion();
}

function apply() {
  if (suggestion?.lr) setHparam("lr", suggestion.lr);
  suggestion = null;
  renderSuggestion();
  invalidate();
}

export function initSuggest() {
  $("inside-suggest").addEventListener("click", suggest);
  $("inside-suggest").title = ASSUMES;
  $("inside-apply").addEventListener("click", apply);
}

/** A new run: an older run's suggestion means nothing. */
export function forgetSuggestion() {
  suggestion = null;
  renderSuggestion();
}

/** Set only what changed: called with the page's controls, every frame something changes. */
function set(el, props) {
  for (const [k, v] of Object.entries(props)) if (el[k] !== v) el[k] = v;
}

export function renderSuggestion() {
  const out = $("inside-suggestion");
  const button = $("inside-apply");
  if (!suggestion || suggestion.lr === null) {
    set(out, { textContent: suggestion ? "no suggestion: no update:data of W1 yet" : "" });
    delete out.dataset.value;
    set(button, { hidden: true });
    return;
  }
  out.dataset.value = String(suggestion.lr);
  set(out, {
    textContent:
      `suggested lr ${fmt.lr(suggestion.lr)}: W1's update:data is 10^${suggestion.ud.toFixed(2)} at lr ${fmt.lr(suggestion.from)}, ` +
      `so lr × 10^(${GUIDE} − ${suggestion.ud.toFixed(2)}) would bring it to ~1e-3`,
    title: ASSUMES,
  });
  set(button, { hidden: false, textContent: `Apply lr ${fmt.lr(suggestion.lr)}`, disabled: state.connection !== "open" });
}
