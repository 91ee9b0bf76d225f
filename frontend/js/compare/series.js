// Each compared run's history: what GET /api/runs/{id}/points gave for the steps in view (at most
// a few thousand points: each group's minimum and maximum past that), plus the live points the
// overview stream brought since (its rows' step and recent loss, its last evaluation). Asked
// again when the x range on screen changes; a branched run shown beside its parent is asked only
// from the step it branched at, so its line continues the parent's.

import { request } from "../api.js";
import { take } from "./prefetch.js";
import { Ema } from "../smoothing.js";
import { state } from "../state.js";
import { examplesMapper, stepAt, stepMapper, StepTimes } from "../xaxis.js";

const MAX_POINTS = 2000; // per run and request (the server's default)
const TAIL_KEPT = 2000; // live points kept past the fetched range (thinned by half past that)
const TIME_KNOTS = 2000;

export function emptySeries() {
  return {
    step: [], loss: [], lr: [], evals: [], changes: [],
    start: 0, end: 0, // the fetched range of steps, [start, end)
    tail: { step: [], loss: [], lr: [] }, // live points from `end` on
    times: new StepTimes(TIME_KNOTS), // step -> seconds of training, over the whole run
    loaded: false, asked: "", generation: 0, error: "",
  };
}

const series = (id) => (state.compare.series[id] ||= emptySeries());

/** The first step this run is drawn from: where it branched, when its parent is drawn too. */
export function firstStep(id) {
  const run = state.compare.runs[id];
  const parent = run && run.parent;
  return parent && state.compare.ids.includes(parent.id) ? parent.step : 0;
}

/** The run's step now: the stream's, else its record's. */
export function stepOf(id) {
  const row = state.compare.live[id];
  const run = state.compare.runs[id];
  return Math.max(row ? row.step : 0, run ? run.step : 0);
}

/**
 * Ask for the run's points in [s0, s1] (whole run: s1 null), at most `points`; a newer ask wins.
 * Resolves once the answer is in the state.
 */
export async function load(id, s0 = 0, s1 = null, points = MAX_POINTS) {
  const s = series(id);
  const from = Math.max(firstStep(id), Math.floor(s0));
  const q = new URLSearchParams({ start: String(from), points: String(Math.max(10, Math.min(MAX_POINTS, points))) });
  if (s1 !== null) q.set("end", String(Math.max(from + 1, Math.ceil(s1) + 1)));
  const key = `${q}@${stepOf(id)}`; // the same range of a run that went on: asked again
  if (s.asked === key && s.loaded) return;
  s.asked = key;
  const generation = ++s.generation;
  // the whole run, first asked as the page started (prefetch.js), at about these many points
  const early = !s.loaded && from === 0 && s1 === null ? take(`points ${id}`) : null;
  let p;
  try {
    p = await (early || request("GET", `/api/runs/${encodeURIComponent(id)}/points?${q}`));
  } catch (e) {
    if (generation === s.generation) s.error = e.message;
    return;
  }
  if (generation !== s.generation) return; // a newer range was asked meanwhile
  Object.assign(s, { step: p.step, loss: p.loss, lr: p.lr, evals: p.evals, changes: p.changes, start: p.start, end: p.end });
  s.error = "";
  if (s1 === null || !s.loaded) s.times.load(p.step, p.time); // the whole run's times: kept across zooms
  s.loaded = true;
  const keep = s.tail.step.findIndex((t) => t >= p.end);
  const t = s.tail;
  s.tail = keep < 0 ? { step: [], loss: [], lr: [] } : { step: t.step.slice(keep), loss: t.loss.slice(keep), lr: t.lr.slice(keep) };
  state.compare.version++;
}

/** A row of the overview stream: its newest step and loss, and its last evaluation. */
export function addLive(row) {
  const s = series(row.id);
  const last = s.tail.step.length ? s.tail.step[s.tail.step.length - 1] : s.end - 1;
  const step = row.step - 1; // the loss is of the steps just done: place it at the last of them
  if (s.loaded && step > last && row.loss !== null && Number.isFinite(row.loss)) {
    s.tail.step.push(step);
    s.tail.loss.push(row.loss);
    s.tail.lr.push(row.lr);
    if (s.tail.step.length > TAIL_KEPT) {
      const keep = (_, i) => i % 2 === 0 || i === s.tail.step.length - 1;
      s.tail = { step: s.tail.step.filter(keep), loss: s.tail.loss.filter(keep), lr: s.tail.lr.filter(keep) };
    }
    s.times.add(step, row.train_seconds);
  }
  const e = row.eval;
  const lastEval = s.evals.length ? s.evals[s.evals.length - 1][0] : -1;
  if (s.loaded && e && e[0] > lastEval) s.evals.push([e[0], e[1], e[2], null]);
}

/** Every point of the run in view, fetched and live: {step, loss, lr}; a branched run's from
 *  where it branched when its parent is drawn (its points may have come before its record). */
export function points(id) {
  const s = series(id);
  const from = firstStep(id);
  let i = 0;
  while (i < s.step.length && s.step[i] < from) i++;
  const cut = (a, b) => (i ? a.slice(i) : a).concat(b);
  return { step: cut(s.step, s.tail.step), loss: cut(s.loss, s.tail.loss), lr: cut(s.lr, s.tail.lr) };
}

/** The smoothed loss (debiased EMA; a point standing for a gap of steps counts as that many). */
export function smoothed({ step, loss }, smoothing) {
  const ema = new Ema(smoothing);
  const x = [], y = [];
  for (let i = 0; i < step.length; i++) {
    if (loss[i] === null || !Number.isFinite(loss[i])) continue;
    x.push(step[i]);
    y.push(ema.push(step[i], loss[i]));
  }
  return { x, y };
}

/** The hyperparameters each step trained with: step -> the change in effect (its lr, batch size...). */
export function hparamsAt(id) {
  const changes = series(id).changes;
  return (step) => {
    let i = changes.length - 1;
    while (i > 0 && changes[i].step > step) i--;
    return changes[i] || null;
  };
}

/** step -> x on the chosen axis, for this run. */
export function xMapper(id, mode) {
  // alignments of the compare view alone: one long run no longer squeezes the others to the left
  if (mode === "logstep") return (step) => Math.log10(step + 1);
  if (mode === "fraction") {
    const n = Math.max(runLength(id), 1);
    return (step) => step / n;
  }
  const s = series(id);
  const examples = s.changes.length ? () => examplesMapper(s.changes[0].batch_size, s.changes) : null;
  return stepMapper(mode, examples, s.times);
}

/** The steps a run spans for "fraction of each run": its max_steps while it trains or waits,
 *  else the step it reached (a run stopped early spans the whole width too). */
function runLength(id) {
  const row = state.compare.live[id];
  const run = state.compare.runs[id];
  const status = (row || run || {}).status;
  const max = row ? row.max_steps : run ? run.hparams.max_steps : 0;
  return status === "running" || status === "queued" ? Math.max(max, stepOf(id)) : stepOf(id) || max;
}

/** The step of this run at x (x grows with the step). */
export function stepAtX(id, mode, x) {
  return stepAt(mode, xMapper(id, mode), x, stepOf(id));
}
