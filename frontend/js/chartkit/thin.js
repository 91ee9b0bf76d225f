// What a chart draws of a series: the points in view, at most a few per pixel, and markers only
// where there are few. A redraw's cost grows with the points drawn (SVG markers most: ~150 ms for
// 1,200 of them against ~25 ms for the same chart with lines alone, measured in bench/page.py),
// and a screen shows no more than a few per pixel anyway; minima and maxima per bucket keep the
// spikes a mean would hide.

/**
 * Points of a series (x increasing) with x in [a, b], and the last one before and the first one
 * after, so that a line reaches the edges of the view.
 */
export function clip({ x, y }, a, b) {
  let i = 0;
  while (i < x.length && x[i] < a) i++;
  let j = i;
  while (j < x.length && x[j] <= b) j++;
  const lo = Math.max(0, i - 1), hi = Math.min(x.length, j + 1);
  return { x: x.slice(lo, hi), y: y.slice(lo, hi) };
}

/** Of n buckets of `width` over [a, b], the one x falls in: -1 before a, n past b. */
function bucketOf(x, a, b, n, width) {
  return x < a ? -1 : x > b ? n : Math.min(n - 1, Math.floor((x - a) / width));
}

/**
 * At most 2n + 1 points for x in [a, b]: of each of n equal buckets, the point with the smallest
 * y and the one with the largest, in x order (spikes survive), and the newest point in view (the
 * line reaches it). Points outside [a, b] are kept as they are (the neighbours clip() leaves).
 * Non-finite y are skipped.
 */
export function bucketMinMax({ x, y }, a, b, n) {
  if (x.length <= 2 * n) return { x, y };
  const width = (b - a) / n || 1;
  const key = (i) => bucketOf(x[i], a, b, n, width);
  const ox = [], oy = [];
  let i = 0;
  while (i < x.length) {
    const k = key(i);
    let lo = -1, hi = -1, newest = -1;
    let j = i;
    for (; j < x.length && key(j) === k; j++) {
      if (!Number.isFinite(y[j])) continue;
      if (lo < 0 || y[j] < y[lo]) lo = j;
      if (hi < 0 || y[j] > y[hi]) hi = j;
      newest = j;
    }
    const keep = new Set([lo, hi]);
    if (k < n && (j === x.length || key(j) === n)) keep.add(newest); // the last bucket in view
    for (const p of [...keep].filter((p) => p >= 0).sort((p, q) => p - q)) {
      ox.push(x[p]);
      oy.push(y[p]);
    }
    i = j;
  }
  return { x: ox, y: oy };
}

/** At most n points for x in [a, b]: the mean x and y of each of n equal buckets (a line). */
export function bucketMean({ x, y }, a, b, n) {
  if (x.length <= n) return { x, y };
  const width = (b - a) / n || 1;
  const ox = [], oy = [];
  let bucket = null, sx = 0, sy = 0, c = 0;
  const flush = () => {
    if (c) { ox.push(sx / c); oy.push(sy / c); }
    sx = sy = c = 0;
  };
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(y[i])) continue;
    const k = bucketOf(x[i], a, b, n, width);
    if (k !== bucket) {
      flush();
      bucket = k;
    }
    sx += x[i]; sy += y[i]; c++;
  }
  flush();
  return { x: ox, y: oy };
}

/** Buckets across `width` pixels, one every `px`, at least `least`. */
export function bucketsAcross(width, px, least) {
  return Math.max(least, Math.round(width / px));
}

/**
 * A loss as drawn for x in [a, b], n buckets: its minibatch losses `raw` as a band (each bucket's
 * minimum and maximum: spikes survive) and its smoothed curve `smooth` as a line (each bucket's mean).
 */
export function thinLoss(raw, smooth, a, b, n) {
  return { raw: bucketMinMax(raw, a, b, n), smooth: bucketMean(smooth, a, b, n) };
}

/** A scatter trace's mode for `count` points: markers too only when at most `most`. */
export function markersIfFew(count, most) {
  return count <= most ? "lines+markers" : "lines";
}
