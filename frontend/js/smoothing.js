// Debiased exponential moving average, as TensorBoard's smoothing slider:
//   ema = s * ema + (1 - s) * x,  shown as ema / (1 - s^n).
// A point that stands for a gap of d steps (downsampled history) counts as d steps: s -> s^d,
// so the curve does not depend on how densely the points were kept.

export class Ema {
  constructor(smoothing) {
    this.smoothing = smoothing;
    this.reset();
  }

  reset() {
    this.value = 0;
    this.weight = 0; // 1 - s^n: the debiasing denominator
    this.lastStep = null;
  }

  /** Feed the loss of `step` (finite); returns the smoothed value at that step. */
  push(step, x) {
    const d = this.lastStep === null ? 1 : Math.max(1, step - this.lastStep);
    const f = d === 1 ? this.smoothing : this.smoothing ** d;
    this.value = f * this.value + (1 - f) * x;
    this.weight = f * this.weight + (1 - f);
    this.lastStep = step;
    return this.weight > 0 ? this.value / this.weight : x;
  }
}
