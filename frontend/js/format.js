// Number formatting for the figures and labels.

const intFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** 1234567 -> "1,234,567" */
export function int(n) {
  return n === null || n === undefined || !Number.isFinite(n) ? "—" : intFormat.format(n);
}

/** A learning rate, at most 4 significant digits, no float noise: 0.1, 0.0316, 1e-7. */
export function lr(x) {
  return x === null || x === undefined ? "—" : String(Number(x.toPrecision(4)));
}

/** A loss with 4 decimals; null (non-finite on the server) as "—". */
export function loss(x) {
  return x === null || x === undefined || !Number.isFinite(x) ? "—" : x.toFixed(4);
}

/** A rate, e.g. steps per second. */
export function rate(x) {
  if (!Number.isFinite(x)) return "—";
  return x >= 100 ? int(x) : x.toFixed(1);
}

/** Epochs: enough digits to see them move. */
export function epochs(x) {
  if (!Number.isFinite(x)) return "—";
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** A compact count: 12.3k, 4.5M. */
export function compact(n) {
  if (!Number.isFinite(n)) return "—";
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(a >= 1e10 ? 0 : 1)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(a >= 1e7 ? 0 : 1)}M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(a >= 1e5 ? 0 : 1)}k`;
  return int(n);
}
