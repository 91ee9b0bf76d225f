// Redraws skipped while they would move nothing by a pixel or two: a loss chart is asked to
// redraw as its run's steps stream in at its right edge, and each Plotly.react costs tens of
// milliseconds however little changed.

const STALE_MS = 2000; // but a plot never shows points older than this

/** What a plot last drew: {key, tail, at}. */
export class LastDraw {
  constructor() {
    this.last = null;
  }

  /**
   * Whether this redraw may be skipped: the last one drew the same `key` (everything the plot
   * shows but the points that came since), less than STALE_MS ago, and `small(tail)` says that
   * what came since that draw's `tail` (how far its points reached) moves nothing by the plot's
   * few pixels. Else this draw is the last one, and it returns false.
   */
  unchanged(key, tail, small) {
    const was = this.last;
    const now = performance.now();
    if (was && was.key === key && now - was.at < STALE_MS && small(was.tail)) return true;
    this.last = { key, tail, at: now };
    return false;
  }

  /** The next redraw draws, whatever it shows. */
  forget() {
    this.last = null;
  }
}
