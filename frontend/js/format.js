// Number formatting for the figures and labels.

/** 1234567 -> "1,234,567", as Intl.NumberFormat("en-US", { maximumFractionDigits: 0 }) writes it
 *  (half away from zero; "-0" for a negative that rounds to 0). By hand: a page's first Intl
 *  formatter loads the locale's data, ~30 ms of the compare view's first visit before its first
 *  picture, for commas. */
export function int(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return "—";
  const whole = Math.round(Math.abs(n));
  if (whole >= 1e21) return n.toLocaleString("en-US", { maximumFractionDigits: 0 }); // String() would say "1e+21"
  const digits = String(whole).replace(/\B(?=(\d{3})+$)/g, ",");
  return n < 0 || Object.is(n, -0) ? `-${digits}` : digits;
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

/** A schedule, as the server confirms it: "constant", "×0.1 from step 100,000", "cosine to 0.001". */
export function schedule(s) {
  if (!s || s.kind === "constant") return "constant";
  if (s.kind === "step") return `×${lr(s.factor)} from step ${int(s.at)}`;
  if (s.kind === "cosine") return `cosine to ${lr(s.min_lr)}`;
  return JSON.stringify(s);
}

/** Seconds: "0.36 s", "12.4 s", "3 min 05 s". */
export function seconds(x) {
  if (!Number.isFinite(x)) return "—";
  if (x < 10) return `${x.toFixed(2)} s`;
  if (x < 120) return `${x.toFixed(1)} s`;
  const m = Math.floor(x / 60);
  return `${m} min ${String(Math.round(x - 60 * m)).padStart(2, "0")} s`;
}

/** A share as a percentage: 0.625 -> "63%". */
export function percent(x) {
  return Number.isFinite(x) ? `${Math.round(100 * x)}%` : "—";
}

/** A positive number with 2-3 significant digits for a figure: 1234.5 -> "1,200", 61.1 -> "61". */
export function approx(x) {
  if (!Number.isFinite(x)) return "—";
  if (x >= 100) return int(Number(x.toPrecision(2)));
  return String(Number(x.toPrecision(2)));
}
