// Server messages -> the state. Each handler changes `state` and asks for a redraw; none draws
// and none fetches (main.js follows up on the few messages that call for a request).

import * as fmt from "./format.js";
import { dismissError, notify } from "./notify.js";
import { invalidate } from "./render.js";
import { MARK_MERGE_S, NOISE_KEPT, RATE_WINDOW_MS, state } from "./state.js";
import { examplesMapper } from "./xaxis.js";

const FIELDS = ["lr", "batch_size", "eval_every", "max_steps", "schedule"];
const LRFIND_BETA = 0.98; // the server's smoothing of the sweep (backend/lrfind.py)

/** Equal values: numbers and strings as they are, schedules field by field. */
export function same(a, b) {
  if (a === b) return true;
  if (!a || !b || typeof a !== "object" || typeof b !== "object") return false;
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (a[k] !== b[k]) return false;
  return true;
}

/** "lr 0.01", "batch 64", "schedule ×0.1 from step 3,000"...: what a change set. */
export function changeLabel(change, before) {
  const parts = [];
  if (change.lr !== before.lr) parts.push(`lr ${fmt.lr(change.lr)}`);
  if (change.batch_size !== before.batch_size) parts.push(`batch ${fmt.int(change.batch_size)}`);
  if (change.eval_every !== before.eval_every) parts.push(`eval every ${fmt.int(change.eval_every)}`);
  if (change.max_steps !== before.max_steps) parts.push(`max steps ${fmt.int(change.max_steps)}`);
  if (!same(change.schedule, before.schedule)) parts.push(`schedule ${fmt.schedule(change.schedule)}`);
  return parts.length ? parts.join(", ") : `lr ${fmt.lr(change.lr)}, batch ${fmt.int(change.batch_size)}`;
}

/** Record one applied change (from the snapshot or live) and update the confirmed values. */
function addChange(msg) {
  // Compared with the change before it (not with state.hparams, which a snapshot may have taken
  // from the trainer a moment after this change was applied).
  const before = state.changes.length ? state.changes[state.changes.length - 1] : state.initialHparams;
  const change = { step: msg.step };
  for (const f of FIELDS) change[f] = msg[f] ?? (f === "schedule" ? { kind: "constant" } : undefined);
  const values = {};
  for (const f of FIELDS) values[f] = change[f];
  // A value this tab asked for is confirmed once the server reports it: an error about an
  // earlier, refused value is stale then.
  for (const f of Object.keys(state.pending)) {
    if (same(state.pending[f].value, change[f])) {
      delete state.pending[f];
      dismissError();
    }
  }
  state.hparams = values;
  if (change.step === 0 && !state.changes.length) {
    state.initialHparams = values; // what the run started with: no mark on the chart
    return;
  }
  if (FIELDS.every((f) => same(change[f], before[f]))) return; // a confirmation, not a change
  change.label = changeLabel(change, before);
  state.changes.push(change);
  for (const f of FIELDS) if (!same(change[f], before[f])) state.since[f] = change.step;
}

/**
 * The hparams a run started with: the snapshot's first change, at step 0, says (addChange takes
 * it). Until the trainer has sent it, the current ones.
 */
function runHparams(run) {
  return { ...run.hparams };
}

/** Keep every other point (and always the last) once there are more than `limit`. */
function thinned(list, limit) {
  if (list.length <= limit) return list;
  const last = list[list.length - 1];
  const out = list.filter((_, i) => i % 2 === 0);
  if (out[out.length - 1] !== last) out.push(last);
  return out;
}

function resetRunViews() {
  state.embeddings = null;
  state.lrfind = {
    phase: "idle",
    lr: [],
    loss: [],
    smoothed: [],
    result: null,
    error: "",
    generation: state.lrfind.generation + 1,
    version: state.lrfind.version + 1,
  };
  state.next = { ...state.next, data: null, error: "", version: state.next.version + 1 };
  state.testLoss = null;
  state.testLossError = "";
  state.view.xRange = null; // a zoom into another run means nothing here
  if (state.samples.names.length) {
    state.samples = { ...state.samples, names: [], new: [], split: [], newShare: null, seed: null, error: "" }; // another network's
  }
}

/** No run shown (the address named one the server does not have): every view empty. */
export function clearRun() {
  resetRunViews();
  state.run = null;
  state.status = null;
  state.detail = "";
  state.cause = null;
  state.checkpointHeld = false;
  state.step = 0;
  state.stepsPerS = 0;
  state.rateWindow = [];
  state.hparams = null;
  state.initialHparams = null;
  state.pending = {};
  state.changes = [];
  state.divergences = [];
  state.evals.clear();
  state.overfit = null;
  state.losses.load([], []);
  state.lrs.load([], []);
  state.times.load([], []);
  state.noise = [];
  invalidate({ chart: true, charts: ["embedding", "noise", "lrfind", "next"] });
}

// Where the run diverged, kept for the tab's session (a reload keeps them; the server's snapshot
// has only the run's current status).
const DIVERGENCES_KEY = "makemore-live.divergences.";

function loadDivergences(runId) {
  try {
    const saved = JSON.parse(sessionStorage.getItem(DIVERGENCES_KEY + runId) || "[]");
    return Array.isArray(saved) ? saved.filter((d) => Number.isFinite(d.step)) : [];
  } catch {
    return []; // no storage, or junk in it
  }
}

/** A divergence at `step`: `divergence` (the server's) says whose weights came back; `detail` is shown. */
function recordDivergence(step, detail, divergence) {
  if (state.divergences.some((d) => d.step === step)) return;
  state.divergences.push({ step, detail: detail || "", restoredFrom: divergence?.restored_step ?? null });
  try {
    sessionStorage.setItem(DIVERGENCES_KEY + state.run.id, JSON.stringify(state.divergences.slice(-100)));
  } catch {
    // private mode: the marks last as long as the page
  }
}

function onSnapshot(msg) {
  const { run, history } = msg;
  const newRun = !state.run || state.run.id !== run.id;
  if (newRun) resetRunViews();
  state.run = run;
  state.status = run.status;
  state.detail = run.detail;
  state.cause = run.cause ?? null;
  state.checkpointHeld = Boolean(run.checkpoint_held);
  state.step = run.step;
  state.stepsPerS = 0;
  state.rateWindow = [];
  state.pending = {};
  state.initialHparams = runHparams(run);
  state.since = { lr: 0, batch_size: 0, eval_every: 0, max_steps: 0, schedule: 0 };
  state.changes = [];
  for (const change of msg.changes) addChange(change);
  state.divergences = loadDivergences(run.id);
  if (run.status === "diverged") recordDivergence(run.step, run.detail, run.divergence);
  state.hparams = runHparams(run); // authoritative
  state.overfit = run.overfit ?? null; // the server's overfitting notice (js/overfit.js shows it)

  // evaluations: compact tuples [step, train_loss, dev_loss, b_noise]
  state.evals.clear();
  for (const [step, train, dev] of msg.evals) state.evals.push(step, train, dev);
  state.noise = thinned(
    msg.evals.filter((e) => e[3] !== null && e[3] !== undefined).map(([step, , , b_noise]) => ({ step, b_noise })),
    NOISE_KEPT,
  );

  state.losses.load(history.step, history.loss);
  state.lrs.load(history.step, history.lr || []);
  state.times.load(history.step, history.time || []);
  state.step = Math.max(state.step, history.n_steps ?? 0);

  if (msg.embeddings) state.embeddings = msg.embeddings;
  if (msg.reason === "new_run") notify(`new run ${run.id} started`, "info", 3000);
  // another run: every plot at once (what they show is another run's)
  invalidate({ chart: true, charts: ["embedding", "noise", "lrfind", "next"], urgent: newRun });
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
  if (msg.lr) state.lrs.extend(msg.step, msg.lr);
  const n = msg.step.length;
  if (n) {
    const last = msg.step[n - 1];
    state.step = Math.max(state.step, last + 1);
    state.times.add(last, msg.time);
  }
  updateRate(msg);
  invalidate({ chart: true, charts: ["noise"] }); // the noise plot's x axis runs to the current step
}

function onEval(msg) {
  state.evals.push(msg.step, msg.train_loss, msg.dev_loss); // the same step again: re-evaluated (restored weights)
  if ("overfit" in msg) state.overfit = msg.overfit;
  invalidate({ chart: true });
}

function onNoise(msg) {
  if (msg.b_noise === null || !Number.isFinite(msg.b_noise)) return;
  const last = state.noise[state.noise.length - 1];
  const point = { step: msg.step, b_noise: msg.b_noise };
  if (last && last.step === msg.step) state.noise[state.noise.length - 1] = point;
  else state.noise.push(point);
  state.noise = thinned(state.noise, NOISE_KEPT);
  invalidate({ charts: ["noise"] });
}

function onEmbeddings(msg) {
  const { type: _, ...map } = msg;
  state.embeddings = map;
  invalidate({ charts: ["embedding"] });
}

/** The debiased EMA of the sweep's losses so far, extended by the new ones (nulls skipped). */
function extendSmoothed(f, losses) {
  let { avg = 0, n = 0 } = f.ema || {};
  for (const loss of losses) {
    if (loss === null || !Number.isFinite(loss)) {
      f.smoothed.push(null);
      continue;
    }
    n++;
    avg = LRFIND_BETA * avg + (1 - LRFIND_BETA) * loss;
    f.smoothed.push(avg / (1 - LRFIND_BETA ** n));
  }
  f.ema = { avg, n };
}

/** The start of a sweep: its points replace the last sweep's. */
export function beginSweep(phase) {
  const f = state.lrfind;
  Object.assign(f, { phase, lr: [], loss: [], smoothed: [], ema: null, result: null, error: "" });
  f.generation++;
  f.version++;
}

function onLrfind(msg) {
  const f = state.lrfind;
  if (f.phase !== "running") {
    // the first points of a sweep: this tab's (asked for: "starting"), or another tab's
    beginSweep("running");
  }
  for (let i = 0; i < msg.lr.length; i++) {
    f.lr.push(msg.lr[i]);
    f.loss.push(msg.loss[i]);
  }
  extendSmoothed(f, msg.loss);
  f.version++;
  invalidate({ charts: ["lrfind"] });
}

/** A finished sweep, from lrfind_done or GET /api/runs/{id}/lr-find. */
export function setSweep(data) {
  const f = state.lrfind;
  const { type: _, lr, loss, smoothed, ...result } = data;
  Object.assign(f, { phase: "done", lr, loss, smoothed, result, error: "", ema: null });
  f.version++;
  invalidate({ charts: ["lrfind"] });
}

function onLrfindDone(msg) {
  state.lrfind.generation++; // an answer to an older request must not overwrite this sweep
  setSweep(msg);
}

function onHparams(msg) {
  const before = state.changes[state.changes.length - 1];
  const n = state.changes.length;
  addChange(msg);
  // a new mark on the chart (not one more change merged into the last): at once
  const apart = before ? state.times.at(msg.step) - state.times.at(before.step) : Infinity;
  const newMark = state.changes.length > n && apart >= MARK_MERGE_S;
  invalidate({ chart: true, urgent: newMark });
  invalidate({ charts: ["noise"] }); // the noise plot shows the batch size
}

function onStatus(msg) {
  state.status = msg.status;
  state.detail = msg.detail;
  state.cause = msg.cause ?? null;
  state.checkpointHeld = Boolean(msg.checkpoint_held);
  state.step = msg.step;
  delete state.pending.status;
  if (msg.status !== "running") {
    state.stepsPerS = 0;
    state.rateWindow = [];
  }
  if (msg.status === "diverged") {
    recordDivergence(msg.step, msg.detail, msg.divergence);
    notify("The run diverged: lower the learning rate, then resume.", "error", 8000);
    invalidate({ chart: true, urgent: true }); // the mark, at once
    return;
  }
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
  noise: onNoise,
  embeddings: onEmbeddings,
  lrfind_start: () => {
    beginSweep("running"); // any tab's sweep: its points replace the last sweep's
    invalidate({ charts: ["lrfind"] });
  },
  lrfind: onLrfind,
  lrfind_done: onLrfindDone,
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

/** step -> examples seen before it, for the run's batch-size changes. */
export function examplesAt() {
  const initial = state.initialHparams ? state.initialHparams.batch_size : 0;
  return examplesMapper(initial, state.changes);
}

/** Examples seen: the sum over steps of the batch size in effect at that step. */
export function examplesSeen() {
  if (!state.initialHparams) return 0;
  return examplesAt()(state.step);
}
