// Every step's value in bounded memory, without losing spikes (as the server's history.py).
//
// Step t falls into bucket floor(t / width). A bucket keeps the minimum and the maximum value it
// saw, with their steps. When a step lands past the last bucket, neighbouring buckets merge
// pairwise and the width doubles. So a series never holds more than 2 * capacity raw points,
// however long the run. MinMaxSeries is that alone (the per-step learning rate); LossSeries adds
// the mean of the smoothed loss (EMA) over each bucket's steps, computed on every incoming loss
// before the loss is folded into a bucket.

import { Ema } from "./smoothing.js";

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

  /** The kept raw points in step order: each bucket's min and max (one point if the same step). */
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
    return { x, y };
  }

  get empty() {
    return this.count === 0;
  }
}

export class LossSeries extends MinMaxSeries {
  constructor(capacity, smoothing) {
    super(capacity);
    this.ema = new Ema(smoothing);
    this.clearEma();
  }

  clear() {
    super.clear();
    if (this.ema) this.clearEma();
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
    this.emaSum[b] += this.ema.push(step, loss);
    this.emaStepSum[b] += step;
    this.emaCount[b] += 1;
  }

  /** Add the loss of one step. Steps come in increasing order; null or non-finite is skipped. */
  push(step, loss) {
    if (loss === null || !Number.isFinite(loss)) return;
    this.addSmoothed(step, loss);
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

  /** New smoothing factor: the EMA again over the points kept (exact while nothing was merged). */
  setSmoothing(s) {
    const { x, y } = this.points();
    this.ema.smoothing = s;
    this.clearEma();
    this.smoothFrom(x, y);
    this.version++;
  }
}
