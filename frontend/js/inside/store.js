// What the Inside panel shows, as the server sends it (backend/core/diagnostics.py's
// diagnostic_point, backend/core/gradcos.py's cosines): the diagnostics' scalars over steps, the
// latest point whole (its histograms) and the one before it (the faint tanh histogram), and the
// latest gradient-direction measurement. The page's state.js is left alone: this is the panel's.

export const PARAMS = ["C", "W1", "b1", "W2", "b2"];
const KEPT = 2000; // points over steps kept; every other one dropped past that (the newest always kept)

export const inside = {
  runId: null,
  steps: [], // the diagnostic points' steps, increasing
  scalars: [], // per point: {ud: {C: log10, ...}, saturated, dead}
  point: null, // the newest point (the table's figures)
  latest: null, // the newest point with its histograms (a snapshot's older points come without)
  previous: null, // the one with histograms before it (drawn faint)
  gradcos: null, // the newest {step, batch_sizes, mean, std, min, max, predicted, b_noise, current}
  version: { steps: 0, hist: 0, gradcos: 0 }, // bumped when what each group of figures shows changed
};

/** A diagnostic point's numbers drawn over steps (its histograms are not kept per point). */
function scalarsOf(point) {
  const ud = {};
  for (const p of PARAMS) ud[p] = point.params?.[p]?.update_data ?? null;
  return { ud, saturated: point.hidden?.saturated ?? null, dead: point.hidden?.dead ?? null };
}

function thin() {
  if (inside.steps.length <= KEPT) return;
  const keep = (_, i, a) => i % 2 === 0 || i === a.length - 1;
  inside.steps = inside.steps.filter(keep);
  inside.scalars = inside.scalars.filter(keep);
}

const hasHist = (point) => Array.isArray(point?.hidden?.tanh?.hist);

/** One point, from a diag message or a snapshot; a point at a step already shown replaces it
 *  (re-measured: weights restored after a divergence). */
export function addPoint(point) {
  if (!point || !Number.isFinite(point.step)) return;
  const n = inside.steps.length;
  let i = n;
  while (i > 0 && inside.steps[i - 1] >= point.step) i--;
  // a step before the newest: the run went back (restored weights); what followed is no more
  inside.steps.length = i;
  inside.scalars.length = i;
  inside.steps.push(point.step);
  inside.scalars.push(scalarsOf(point));
  thin();
  inside.point = point;
  if (hasHist(point)) {
    if (inside.latest && inside.latest.step < point.step) inside.previous = inside.latest;
    else if (inside.previous && inside.previous.step >= point.step) inside.previous = null;
    inside.latest = point;
    inside.version.hist++;
  }
  inside.version.steps++;
}

export function setGradcos(msg) {
  if (!msg || !Array.isArray(msg.batch_sizes)) return;
  const { type: _, ...g } = msg;
  inside.gradcos = g;
  inside.version.gradcos++;
}

/** Everything of another run forgotten. */
export function resetInside(runId) {
  Object.assign(inside, { runId, steps: [], scalars: [], point: null, latest: null, previous: null, gradcos: null });
  for (const k of Object.keys(inside.version)) inside.version[k]++;
}

/**
 * Points as the server's columns ({step: [...], saturated: [...], "W1.update_data": [...], ...}:
 * backend/store/diagnostics.py's `columns`), or a list of whole points, as a list of
 * {step, hidden: {saturated, dead, ...}, params: {name: {std, grad_data, update_data, ...}}}.
 */
export function pointsOf(data) {
  if (Array.isArray(data)) return data;
  if (!data || !Array.isArray(data.step)) return [];
  const out = data.step.map((step) => ({ step, hidden: {}, params: {} }));
  for (const [key, values] of Object.entries(data)) {
    if (key === "step" || !Array.isArray(values)) continue;
    const dot = key.indexOf(".");
    values.forEach((v, i) => {
      if (i >= out.length) return;
      if (dot < 0) out[i].hidden[key] = v;
      else (out[i].params[key.slice(0, dot)] ||= {})[key.slice(dot + 1)] = v;
    });
  }
  return out;
}

/** A snapshot: its run's recent points (`diag`: {points: columns, latest: the newest point
 *  whole}, or a list of points) and its last `gradcos`. */
export function loadSnapshot(msg) {
  const id = msg.run?.id ?? null;
  resetInside(id);
  const d = msg.diag;
  const list = pointsOf(Array.isArray(d) ? d : d?.points).sort((a, b) => a.step - b.step);
  const latest = d && !Array.isArray(d) ? d.latest : null;
  for (const p of list) addPoint(latest && p.step === latest.step ? latest : p);
  if (latest && inside.latest !== latest) {
    const last = inside.steps.length ? inside.steps[inside.steps.length - 1] : -Infinity;
    if (latest.step > last) addPoint(latest);
    else {
      inside.latest = latest; // its histograms; the columns have the newer scalars
      inside.version.hist++;
    }
  }
  if (msg.gradcos) setGradcos(msg.gradcos);
}

/** The series of update:data of parameter `p` over steps: {x, y} (nulls where not finite). */
export function udSeries(p) {
  return { x: inside.steps, y: inside.scalars.map((s) => s.ud[p]) };
}

export function hiddenSeries(key) {
  return { x: inside.steps, y: inside.scalars.map((s) => s[key]) };
}

/** The mean of W1's update:data (log10) over the last `n` points that have one, or null. */
export function recentUd(p = "W1", n = 5) {
  const vals = [];
  for (let i = inside.scalars.length - 1; i >= 0 && vals.length < n; i--) {
    const v = inside.scalars[i].ud[p];
    if (Number.isFinite(v)) vals.push(v);
  }
  return vals.length ? { value: vals.reduce((a, b) => a + b, 0) / vals.length, count: vals.length } : null;
}
