// Every step's value in bounded memory, without losing spikes (as the server's history.py).
//
// Step t falls into bucket floor(t / width). A bucket keeps the minimum and the maximum value it
// saw, with their steps. When a step lands past the last bucket, neighbouring buckets merge
// pairwise and the width doubles. So a series never holds more than 2 * capacity raw points,
// however long the run. MinMaxSeries is that alone (the per-step learning rate); LossSeries adds
// the mean of the smoothed loss (EMA) over each bucket's steps, computed on every incoming loss
// before the loss is folded into a bucket. RecentSeries keeps the last few thousand points as
// they came (the "follow" view's detail). What is in view is thinned by chartkit/thin.js.

import { clip } from "./chartkit/thin.js";
import { Ema } from "./smoothing.js";

// the thinning too, from here as well: the page's tests take a long run's series and what is
// drawn of it from this one module
export { bucketMean, bucketMinMax, clip } from "./chartkit/thin.js";

export class MinMaxSeries {
  constructor(capacity) {
    this.capacity = capacity;
    this.clear();
  }

  clear() {
    const n = this.capacity;
    this.width = 1;
    this.count = 0; // buckets 0 .. count-1 may be in use; an empty one has minStep -1
    this.minStep = new Float64Array(n).fill(-1);
    this.min = new Float64Array(n);
    this.maxStep = new Float64Array(n).fill(-1);
    this.max = new Float64Array(n);
    this.version = 0; // bumped on every change: a chart that drew this version need not redraw
    this.lastStep = -1; // the newest point, so that a line reaches it whatever the buckets keep
    this.lastValue = 0;
  }

  bucket(step) {
    let b = Math.floor(step / this.width);
    while (b >= this.capacity) {
      this.halve();
      b = Math.floor(step / this.width);
    }
    this.count = Math.max(this.count, b + 1);
    return b;
  }

  addRaw(step, value) {
    const b = this.bucket(step);
    if (step >= this.lastStep) [this.lastStep, this.lastValue] = [step, value];
    if (this.minStep[b] < 0) {
      this.minStep[b] = this.maxStep[b] = step;
      this.min[b] = this.max[b] = value;
    } else {
      if (value < this.min[b]) [this.min[b], this.minStep[b]] = [value, step];
      if (value > this.max[b]) [this.max[b], this.maxStep[b]] = [value, step];
    }
    this.version++;
  }

  /** Add the value of one step. Steps come in increasing order; null or non-finite is skipped. */
  push(step, value) {
    if (value === null || !Number.isFinite(value)) return;
    this.addRaw(step, value);
  }

  /** Add many steps (parallel arrays). */
  extend(steps, values) {
    for (let i = 0; i < steps.length; i++) this.push(steps[i], values[i]);
  }

  /** Start from points that may be downsampled already (the snapshot's history). */
  load(steps, values) {
    this.clear();
    for (let i = 0; i < steps.length; i++) this.push(steps[i], values[i]);
  }

  /** Merge buckets 2k and 2k+1 into k; the width doubles. */
  halve() {
    const n = this.count;
    const pairs = Math.ceil(n / 2);
    for (let k = 0; k < pairs; k++) {
      const a = 2 * k;
      const b = 2 * k + 1;
      let minStep = this.minStep[a], min = this.min[a];
      let maxStep = this.maxStep[a], max = this.max[a];
      if (b < n && this.minStep[b] >= 0) {
        if (minStep < 0 || this.min[b] < min) [min, minStep] = [this.min[b], this.minStep[b]];
        if (maxStep < 0 || this.max[b] > max) [max, maxStep] = [this.max[b], this.maxStep[b]];
      }
      this.minStep[k] = minStep; this.min[k] = min;
      this.maxStep[k] = maxStep; this.max[k] = max;
    }
    for (let k = pairs; k < n; k++) this.minStep[k] = this.maxStep[k] = -1;
    this.count = pairs;
    this.width *= 2;
  }

  /** The kept raw points in step order: each bucket's min and max (one point if the same step),
   *  and the newest point. */
  points() {
    const x = [], y = [];
    for (let b = 0; b < this.count; b++) {
      if (this.minStep[b] < 0) continue;
      const lo = this.minStep[b], hi = this.maxStep[b];
      if (lo === hi) {
        x.push(lo); y.push(this.min[b]);
      } else if (lo < hi) {
        x.push(lo, hi); y.push(this.min[b], this.max[b]);
      } else {
        x.push(hi, lo); y.push(this.max[b], this.min[b]);
      }
    }
    if (this.lastStep >= 0 && !(x[x.length - 1] >= this.lastStep)) {
      x.push(this.lastStep);
      y.push(this.lastValue);
    }
    return { x, y };
  }

  get empty() {
    return this.count === 0;
  }
}

/**
 * The last `capacity` points of one or more parallel series, each kept as it came (a ring
 * buffer). Steps come in increasing order; a point at the last step again replaces it.
 */
export class RecentSeries {
  constructor(capacity, fields = 1) {
    this.capacity = capacity;
    this.fields = fields;
    this.clear();
  }

  clear() {
    this.steps = new Float64Array(this.capacity);
    this.values = Array.from({ length: this.fields }, () => new Float64Array(this.capacity));
    this.start = 0; // index of the oldest point
    this.length = 0;
  }

  /** The step of the oldest point kept (Infinity when empty). */
  get first() {
    return this.length ? this.steps[this.start] : Infinity;
  }

  get last() {
    return this.length ? this.steps[(this.start + this.length - 1) % this.capacity] : -Infinity;
  }

  push(step, ...values) {
    let i;
    if (this.length && step === this.last) {
      i = (this.start + this.length - 1) % this.capacity;
    } else if (this.length < this.capacity) {
      i = (this.start + this.length++) % this.capacity;
    } else {
      i = this.start;
      this.start = (this.start + 1) % this.capacity;
    }
    this.steps[i] = step;
    for (let f = 0; f < this.fields; f++) this.values[f][i] = values[f] ?? NaN;
  }

  /** The points with a step in [a, b] of field f, with the one before and the one after (see
   *  clip()): {x, y}. */
  slice(a, b, f = 0) {
    const x = [], y = [];
    let before = -1;
    for (let k = 0; k < this.length; k++) {
      const i = (this.start + k) % this.capacity;
      const s = this.steps[i];
      if (s < a) {
        before = i;
        continue;
      }
      if (before >= 0) {
        x.push(this.steps[before]);
        y.push(this.values[f][before]);
        before = -1;
      }
      x.push(s);
      y.push(this.values[f][i]);
      if (s > b) break;
    }
    return { x, y };
  }

  /** Set field f of every point from fn(step, values of the point) (in step order). */
  recompute(f, fn) {
    for (let k = 0; k < this.length; k++) {
      const i = (this.start + k) % this.capacity;
      this.values[f][i] = fn(this.steps[i], this.values.map((v) => v[i]));
    }
  }
}

/**
 * Every step's loss: the min/max buckets of the whole run with the mean of the smoothed loss
 * (EMA) in each, and the last `recentSteps` steps as they came, with their EMA.
 */
export class LossSeries extends MinMaxSeries {
  constructor(capacity, smoothing, recentSteps = 0) {
    super(capacity);
    this.ema = new Ema(smoothing);
    this.recent = new RecentSeries(Math.max(1, recentSteps), 2); // fields: loss, smoothed
    this.clearEma();
  }

  clear() {
    super.clear();
    if (this.ema) this.clearEma();
    if (this.recent) this.recent.clear();
  }

  clearEma() {
    const n = this.capacity;
    this.emaSum = new Float64Array(n); // sum of the smoothed values of the bucket's steps
    this.emaStepSum = new Float64Array(n); // sum of those steps (the point goes at their mean)
    this.emaCount = new Float64Array(n);
    this.ema.reset();
  }

  addSmoothed(step, loss) {
    const b = this.bucket(step);
    const smoothed = this.ema.push(step, loss);
    this.emaSum[b] += smoothed;
    this.emaStepSum[b] += step;
    this.emaCount[b] += 1;
    return smoothed;
  }

  /** Add the loss of one step. Steps come in increasing order; null or non-finite is skipped. */
  push(step, loss) {
    if (loss === null || !Number.isFinite(loss)) return;
    this.recent.push(step, loss, this.addSmoothed(step, loss));
    this.addRaw(step, loss);
  }

  /**
   * Start from a history that may be downsampled already (the snapshot's: the min and max of
   * groups of steps). Its points are kept as they are; the EMA runs over smoothFrom(points).
   */
  load(steps, losses) {
    this.clear();
    const x = [], y = [];
    for (let i = 0; i < steps.length; i++) {
      if (losses[i] === null || !Number.isFinite(losses[i])) continue;
      this.addRaw(steps[i], losses[i]);
      x.push(steps[i]);
      y.push(losses[i]);
    }
    this.smoothFrom(x, y);
    if (this.width === 1) {
      // every step of a young run: the recent ones are exact
      const ema = new Ema(this.ema.smoothing);
      for (let i = 0; i < x.length; i++) this.recent.push(x[i], y[i], ema.push(x[i], y[i]));
    }
  }

  /**
   * What the EMA should see of the kept points. While buckets are one step wide they are every
   * step's loss (but for skipped nulls), fed as they are. Otherwise they are the minima and maxima
   * of groups of steps, and the EMA of extremes would zigzag between them: it gets the midpoints
   * of neighbouring points instead.
   */
  smoothFrom(x, y) {
    if (this.width === 1 || x.length < 2) {
      for (let i = 0; i < x.length; i++) this.addSmoothed(x[i], y[i]);
      return;
    }
    this.addSmoothed(x[0], y[0]);
    for (let i = 1; i < x.length; i++) this.addSmoothed((x[i - 1] + x[i]) / 2, (y[i - 1] + y[i]) / 2);
  }

  /** Merge buckets 2k and 2k+1 into k (the smoothed sums too); the width doubles. */
  halve() {
    const n = this.count;
    const pairs = Math.ceil(n / 2);
    for (let k = 0; k < pairs; k++) {
      const a = 2 * k;
      const b = 2 * k + 1;
      let emaSum = this.emaSum[a], emaStepSum = this.emaStepSum[a], emaCount = this.emaCount[a];
      if (b < n) {
        emaSum += this.emaSum[b];
        emaStepSum += this.emaStepSum[b];
        emaCount += this.emaCount[b];
      }
      this.emaSum[k] = emaSum; this.emaStepSum[k] = emaStepSum; this.emaCount[k] = emaCount;
    }
    for (let k = pairs; k < n; k++) this.emaSum[k] = this.emaStepSum[k] = this.emaCount[k] = 0;
    super.halve();
  }

  /** The smoothed curve: one point per bucket, the mean EMA of its steps at their mean step. */
  smoothed() {
    const x = [], y = [];
    for (let b = 0; b < this.count; b++) {
      const c = this.emaCount[b];
      if (c === 0) continue;
      x.push(this.emaStepSum[b] / c);
      y.push(this.emaSum[b] / c);
    }
    return { x, y };
  }

  /** The smoothed curve of the recent steps (every one of them, for x in [a, b]). */
  recentSmoothed(a, b) {
    return this.recent.slice(a, b, 1);
  }

  /**
   * New smoothing factor: the EMA again over the points kept (exact while nothing was merged);
   * for the recent steps, over the kept points before them and then every recent step.
   */
  setSmoothing(s) {
    const { x, y } = this.points();
    this.ema.smoothing = s;
    this.clearEma();
    this.smoothFrom(x, y);
    const ema = new Ema(s);
    const first = this.recent.first;
    for (let i = 0; i < x.length && x[i] < first; i++) {
      if (this.width === 1 || i === 0) ema.push(x[i], y[i]);
      else ema.push((x[i - 1] + x[i]) / 2, (y[i - 1] + y[i]) / 2);
    }
    this.recent.recompute(1, (step, [loss]) => ema.push(step, loss));
    if (this.recent.length) Object.assign(this.ema, { value: ema.value, weight: ema.weight, lastStep: ema.lastStep });
    this.version++;
  }
}

/**
 * The evaluations (train and dev loss at some steps), bounded like the losses: min/max buckets
 * over the whole run, the last `recent` evaluations as they came, and the last one with a loss.
 */
export class EvalSeries {
  constructor(capacity, recent) {
    this.train = new MinMaxSeries(capacity);
    this.dev = new MinMaxSeries(capacity);
    this.recent = new RecentSeries(recent, 2);
    this.clear();
  }

  clear() {
    this.train.clear();
    this.dev.clear();
    this.recent.clear();
    this.last = null; // {step, train_loss, dev_loss}: the last evaluation with a finite loss
    this.count = 0; // evaluations seen
    this.version = 0;
  }

  /** One evaluation; a loss may be null (a diverged step). The last step again replaces it. */
  push(step, train, dev) {
    const finite = (v) => v !== null && v !== undefined && Number.isFinite(v);
    if (step !== this.recent.last) this.count++;
    this.train.push(step, train);
    this.dev.push(step, dev);
    this.recent.push(step, finite(train) ? train : NaN, finite(dev) ? dev : NaN);
    if (finite(train) || finite(dev)) this.last = { step, train_loss: finite(train) ? train : null, dev_loss: finite(dev) ? dev : null };
    this.version++;
  }

  /** The points of "train" or "dev" for steps in [a, b] (and a neighbour each side): {x, y}. */
  points(key, a, b) {
    if (a >= this.recent.first) {
      const p = this.recent.slice(a, b, key === "train" ? 0 : 1);
      const keep = p.y.map(Number.isFinite);
      return { x: p.x.filter((_, i) => keep[i]), y: p.y.filter((_, i) => keep[i]) };
    }
    return clip(this[key].points(), a, b);
  }
}
