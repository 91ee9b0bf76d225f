// Server messages -> the state. Each handler changes `state` and asks for a redraw; none draws.

import * as fmt from "./format.js";
import { notify } from "./notify.js";
import { invalidate } from "./render.js";
import { EVALS_KEPT, RATE_WINDOW_MS, state } from "./state.js";

const FIELDS = ["lr", "batch_size", "eval_every", "max_steps"];

/** "lr 0.01", "batch 64"...: what a change set, compared with the hparams before it. */
function changeLabel(change, before) {
  const parts = [];
  if (change.lr !== before.lr) parts.push(`lr ${fmt.lr(change.lr)}`);
  if (change.batch_size !== before.batch_size) parts.push(`batch ${fmt.int(change.batch_size)}`);
  if (change.eval_every !== before.eval_every) parts.push(`eval every ${fmt.int(change.eval_every)}`);
  if (change.max_steps !== before.max_steps) parts.push(`max steps ${fmt.int(change.max_steps)}`);
  return parts.length ? parts.join(", ") : `lr ${fmt.lr(change.lr)}, batch ${fmt.int(change.batch_size)}`;
}

/** Record one applied change (from the snapshot or live) and update the confirmed values. */
function addChange(msg) {
  // Compared with the change before it (not with state.hparams, which a snapshot may have taken
  // from the trainer a moment after this change was applied).
  const before = state.changes.length ? state.changes[state.changes.length - 1] : state.initialHparams;
  const change = { step: msg.step };
  for (const f of FIELDS) change[f] = msg[f];
  const values = { lr: change.lr, batch_size: change.batch_size, eval_every: change.eval_every, max_steps: change.max_steps };
  // A value this tab asked for is confirmed once the server reports it.
  for (const f of Object.keys(state.pending)) {
    if (state.pending[f].value === change[f]) delete state.pending[f];
  }
  state.hparams = values;
  if (change.step === 0 && !state.changes.length) {
    state.initialHparams = values; // what the run started with: no mark on the chart
    return;
  }
  if (FIELDS.every((f) => change[f] === before[f])) return; // a confirmation, not a change
  change.label = changeLabel(change, before);
  state.changes.push(change);
  for (const f of FIELDS) if (change[f] !== before[f]) state.since[f] = change.step;
}

/**
 * The hparams a run started with: the snapshot's first change, at step 0, says (addChange takes
 * it). Until the trainer has sent it, the current ones.
 */
function initialHparams(run) {
  return { ...run.hparams, max_steps: run.config.max_steps };
}

function thinEvals() {
  // Keep every other evaluation (and always the last) once there are too many to draw.
  const e = state.evals;
  if (e.length <= EVALS_KEPT) return;
  const last = e[e.length - 1];
  state.evals = e.filter((_, i) => i % 2 === 0);
  if (state.evals[state.evals.length - 1] !== last) state.evals.push(last);
}

function onSnapshot(msg) {
  const { run } = msg;
  const newRun = !state.run || state.run.id !== run.id;
  state.run = run;
  state.status = run.status;
  state.detail = run.detail;
  state.step = run.step;
  state.stepsPerS = 0;
  state.rateWindow = [];
  state.pending = {};
  state.initialHparams = initialHparams(run);
  state.since = { lr: 0, batch_size: 0, eval_every: 0, max_steps: 0 };
  state.changes = [];
  for (const change of msg.changes) addChange(change);
  state.hparams = { ...run.hparams, max_steps: run.config.max_steps }; // authoritative
  state.evals = msg.evals.slice();
  thinEvals();
  state.losses.load(msg.history.step, msg.history.loss);
  if (newRun && state.samples.names.length) {
    state.samples = { ...state.samples, names: [], seed: null, error: "" }; // drawn from another network
  }
  if (msg.reason === "new_run") notify(`new run ${run.id} started`, "info", 3000);
  invalidate({ chart: true });
}

/**
 * Steps per second over the last RATE_WINDOW_MS. Each message's steps_per_s covers only its own
 * steps (the one after an evaluation counts the evaluation's time too): its steps over its
 * seconds, summed over a few messages, reads steadily.
 */
function updateRate(msg) {
  const now = performance.now();
  const n = msg.step.length;
  if (n && msg.steps_per_s > 0) state.rateWindow.push({ at: now, steps: n, seconds: n / msg.steps_per_s });
  state.rateWindow = state.rateWindow.filter((r) => now - r.at <= RATE_WINDOW_MS);
  let steps = 0, seconds = 0;
  for (const r of state.rateWindow) {
    steps += r.steps;
    seconds += r.seconds;
  }
  state.stepsPerS = seconds > 0 ? steps / seconds : msg.steps_per_s;
}

function onSteps(msg) {
  state.losses.extend(msg.step, msg.loss);
  if (msg.step.length) state.step = Math.max(state.step, msg.step[msg.step.length - 1] + 1);
  updateRate(msg);
  invalidate({ chart: true });
}

function onEval(msg) {
  const e = { step: msg.step, train_loss: msg.train_loss, dev_loss: msg.dev_loss };
  const last = state.evals[state.evals.length - 1];
  if (last && last.step === e.step) state.evals[state.evals.length - 1] = e; // re-evaluated (restored weights)
  else state.evals.push(e);
  thinEvals();
  invalidate({ chart: true });
}

function onHparams(msg) {
  addChange(msg);
  invalidate({ chart: true });
}

function onStatus(msg) {
  state.status = msg.status;
  state.detail = msg.detail;
  state.step = msg.step;
  delete state.pending.status;
  if (msg.status !== "running") {
    state.stepsPerS = 0;
    state.rateWindow = [];
  }
  if (msg.status === "diverged") notify("The run diverged: lower the learning rate, then resume.", "error", 8000);
  invalidate();
}

function onError(msg) {
  // Errors answer this tab's own commands: whatever it was waiting for will not come.
  state.pending = {};
  notify(msg.detail, "error");
  invalidate();
}

function onLagged(msg) {
  notify(`this tab fell behind (${fmt.int(msg.dropped)} messages dropped); redrawing from a snapshot`, "info", 4000);
}

const HANDLERS = {
  snapshot: onSnapshot,
  steps: onSteps,
  eval: onEval,
  hparams: onHparams,
  status: onStatus,
  error: onError,
  lagged: onLagged,
};

export function handleMessage(msg) {
  const handler = HANDLERS[msg.type];
  if (handler) handler(msg);
  else console.warn("unknown message", msg);
}

/** Examples seen: the sum over steps of the batch size in effect at that step. */
export function examplesSeen() {
  let total = 0;
  let from = 0;
  let batch = state.initialHparams.batch_size;
  for (const c of state.changes) {
    const to = Math.min(c.step, state.step);
    if (to > from) total += (to - from) * batch;
    from = Math.max(from, c.step);
    batch = c.batch_size;
  }
  if (state.step > from) total += (state.step - from) * batch;
  return total;
}
