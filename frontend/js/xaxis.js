// The loss chart's x axis: steps, examples seen, or seconds of training. Everything on the
// step-based charts (losses, evaluations, change marks, learning rate) is kept by step and mapped
// through one of these when drawn.
//
//   examples: the sum of the batch size in effect over the steps before (from the changes,
//             the step-0 entry included): exact.
//   time:     seconds of training (pauses excluded). Each steps message says the time at its last
//             step, and its steps are spaced evenly since the previous message's: so time is
//             linear between these knots. The snapshot's history gives a knot per point.

export const X_AXES = {
  step: { title: "step", hover: "step %{x:,}", format: ",d" },
  examples: { title: "examples seen", hover: "%{x:,.0f} examples", format: ",.0f" },
  time: { title: "training time (s)", hover: "%{x:.2f} s of training", format: ".2f" },
  // the compare view's alignments (compare/series.js maps them): log10(step + 1), step / length
  logstep: { title: "step (log scale)", hover: "log10(step+1) %{x:.2f}", format: ".2f", log: true },
  fraction: { title: "fraction of each run", hover: "%{x:.1%} of the run", format: ".1%" },
};

/** step -> seconds of training at the end of that step, as bounded knots (thinned when full). */
export class StepTimes {
  constructor(capacity) {
    this.capacity = capacity;
    this.clear();
  }

  clear() {
    this.steps = [];
    this.times = [];
  }

  /** The time at the end of `step` (steps come in increasing order). */
  add(step, time) {
    if (time === null || !Number.isFinite(time)) return;
    const n = this.steps.length;
    if (n && step <= this.steps[n - 1]) return;
    this.steps.push(step);
    this.times.push(n ? Math.max(time, this.times[n - 1]) : time);
    if (this.steps.length > this.capacity) this.thin();
  }

  load(steps, times) {
    this.clear();
    for (let i = 0; i < steps.length; i++) this.add(steps[i], times[i]);
  }

  /** Keep every other knot (and the last): the mapping stays close, the memory bounded. */
  thin() {
    const last = this.steps.length - 1;
    const keep = (_, i) => i % 2 === 0 || i === last;
    this.steps = this.steps.filter(keep);
    this.times = this.times.filter(keep);
  }

  get last() {
    const n = this.steps.length;
    return n ? { step: this.steps[n - 1], time: this.times[n - 1] } : null;
  }

  /** Seconds of training at the end of `step`: linear between knots; before the first one, from
   *  0 at step -1; past the last one, the last time. */
  at(step) {
    const s = this.steps, t = this.times;
    const n = s.length;
    if (!n) return 0;
    if (step >= s[n - 1]) return t[n - 1];
    let lo = 0, hi = n - 1; // first knot with s >= step
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (s[mid] < step) lo = mid + 1;
      else hi = mid;
    }
    const s0 = lo ? s[lo - 1] : -1, t0 = lo ? t[lo - 1] : 0;
    return t0 + ((t[lo] - t0) * (step - s0)) / (s[lo] - s0);
  }
}

/** Examples seen before `step` for every step, from the batch-size changes. */
export function examplesMapper(initialBatch, changes) {
  const starts = [0], before = [0], batch = [initialBatch];
  for (const c of changes) {
    const i = starts.length - 1;
    if (c.batch_size === batch[i]) continue;
    if (c.step <= starts[i]) {
      batch[i] = c.batch_size; // same step: the later value holds
      continue;
    }
    before.push(before[i] + (c.step - starts[i]) * batch[i]);
    starts.push(c.step);
    batch.push(c.batch_size);
  }
  return (step) => {
    let i = starts.length - 1;
    while (i > 0 && starts[i] > step) i--; // few changes: a linear scan from the end is fine
    return before[i] + (step - starts[i]) * batch[i];
  };
}

/** The step in [0, last] whose x is `x`, for a mapping X of steps that grows with the step. */
export function stepAtValue(X, x, last) {
  let lo = 0, hi = Math.max(last, 1);
  if (x <= X(lo)) return lo;
  if (x >= X(hi)) return hi;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (X(mid) <= x) lo = mid;
    else hi = mid;
  }
  return lo;
}

/**
 * step -> x in unit `mode` (a key of X_AXES) for one run: `examples()` makes its examples-seen
 * mapping (null while its batch sizes are not known: then the step), `times` are its StepTimes.
 */
export function stepMapper(mode, examples, times) {
  if (mode === "examples" && examples) return examples();
  if (mode === "time") return (step) => times.at(step);
  return (step) => step;
}

/** The step at x in unit `mode`, for the run's mapping X (x grows with the step) and last step. */
export function stepAt(mode, X, x, last) {
  if (mode === "step") return x;
  return stepAtValue(X, x, last);
}
