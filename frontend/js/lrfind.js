// The learning-rate finder panel: asks for a sweep (POST /api/runs/{id}/lr-find), plots its
// loss against the rate as the points stream in (`lrfind` messages, into state.lrfind by
// events.js), then the smoothed curve and the suggestion (`lrfind_done`); "Apply" sends the
// suggested rate over the websocket like the slider does.

import { lastLrFind, startLrFind } from "./api.js";
import { setHparam } from "./controls.js";
import { setSweep } from "./events.js";
import * as fmt from "./format.js";
import { axis, baseLayout, COLORS, logAxis, react, SMALL_CONFIG } from "./plots.js";
import { invalidate } from "./render.js";
import { state } from "./state.js";

const $ = (id) => document.getElementById(id);

function readSpec() {
  const min = Number($("lrfind-min").value);
  const max = Number($("lrfind-max").value);
  const steps = Number($("lrfind-steps").value);
  const problems = [];
  if (!(min > 0 && min <= 10)) problems.push("min lr: more than 0, at most 10");
  if (!(max > 0 && max <= 10)) problems.push("max lr: more than 0, at most 10");
  if (min > 0 && max > 0 && min >= max) problems.push("min lr must be below max lr");
  if (!Number.isInteger(steps) || steps < 10 || steps > 5000) problems.push("steps: a whole number from 10 to 5,000");
  return { spec: { min_lr: min, max_lr: max, steps }, problems };
}

async function find() {
  if (!state.run) return;
  const { spec, problems } = readSpec();
  const f = state.lrfind;
  if (problems.length) {
    f.error = problems.join("; ");
    invalidate();
    return;
  }
  const before = { phase: f.phase, result: f.result };
  f.phase = "starting"; // the old curve stays until the first points come
  f.error = "";
  invalidate();
  try {
    await startLrFind(state.run.id, spec);
  } catch (e) {
    if (f.phase === "starting") {
      f.phase = before.result ? "done" : "idle";
    }
    f.error = e.why || e.message;
    invalidate();
  }
}

/** The last sweep of the run (after a reload: the snapshot has it without its points). */
export async function fetchLastSweep(runId) {
  const generation = state.lrfind.generation;
  try {
    const data = await lastLrFind(runId);
    // a sweep that started since, or another run, wins
    if (state.lrfind.generation !== generation || !state.run || state.run.id !== runId) return;
    if (state.lrfind.phase === "running" || state.lrfind.phase === "starting") return;
    setSweep(data);
  } catch (e) {
    if (e.status !== 404) console.warn("learning-rate sweep:", e.message);
  }
}

/** A snapshot's `lrfind` (a sweep without its points): fetch the points unless they are here. */
export function onSnapshotSweep(summary) {
  const r = state.lrfind.result;
  if (!summary || !state.run) return;
  if (r && r.step === summary.step && r.seconds === summary.seconds && r.suggestion === summary.suggestion) return;
  if (state.lrfind.phase === "running") return;
  fetchLastSweep(state.run.id);
}

function apply() {
  const r = state.lrfind.result;
  // exactly the rate the button shows (the server rounds its suggestion; one it stored before
  // it did is rounded as shown)
  if (r && r.suggestion) setHparam("lr", Number(fmt.lr(r.suggestion)));
}

export function initLrFind() {
  $("lrfind-form").addEventListener("submit", (event) => {
    event.preventDefault();
    find();
  });
  $("lrfind-apply").addEventListener("click", apply);
}

function sweepInfo(f) {
  const r = f.result;
  if (f.phase === "starting") return "starting the sweep…";
  if (f.phase === "running") {
    const paused = state.cause === "lr_find" ? " (the run waits meanwhile)" : "";
    return `sweeping: ${fmt.int(f.lr.length)} rates so far, up to ${fmt.lr(f.lr[f.lr.length - 1])}${paused}`;
  }
  if (!r) return "Sweeps the rate from min to max, one step each, on a copy of the weights: the run is left as it was.";
  const perStep = r.seconds / Math.max(f.lr.length, 1);
  return (
    `${fmt.int(f.lr.length)} rates in ${fmt.seconds(r.seconds)} (${(perStep * 1000).toFixed(2)} ms a step), ` +
    `at step ${fmt.int(r.step)}, batch ${fmt.int(r.batch_size)}${r.stopped_early ? ", stopped early (loss blew up)" : ""}`
  );
}

export function renderLrFind() {
  const f = state.lrfind;
  const busy = f.phase === "starting" || f.phase === "running";
  const stopped = !state.run || state.status === "stopped";
  const button = $("lrfind-button");
  button.disabled = busy || stopped || state.connection !== "open";
  button.textContent = busy ? "Finding…" : "Find learning rate";

  const r = f.result;
  const sugg = $("lrfind-suggestion");
  const value = r && r.suggestion ? r.suggestion : null;
  const text = value ? `suggested lr ${fmt.lr(value)}` : f.phase === "done" ? "no suggestion (too few points)" : "";
  if (sugg.textContent !== text) sugg.textContent = text;
  if (value) sugg.dataset.value = String(value);
  else delete sugg.dataset.value;
  if (r) sugg.dataset.step = String(r.step); // the run's step when the sweep was taken
  else delete sugg.dataset.step;
  sugg.title = r ? r.method : "";

  const applyButton = $("lrfind-apply");
  applyButton.hidden = !value;
  applyButton.textContent = value ? `Apply lr ${fmt.lr(value)}` : "Apply";
  const current = state.hparams && value && state.hparams.lr === value;
  applyButton.disabled = busy || stopped || !!current || state.connection !== "open";
  applyButton.title = current ? "the run uses this rate already" : "set the run's learning rate to the suggestion";

  const method = $("lrfind-method");
  const m = r ? `${r.method}` : "";
  if (method.textContent !== m) method.textContent = m;
  const info = sweepInfo(f);
  if ($("lrfind-info").textContent !== info) $("lrfind-info").textContent = info;
  const error = $("lrfind-error");
  error.hidden = !f.error;
  error.textContent = f.error;
}

/** Lows and highs of the smoothed curve (raw spikes may go off the plot). */
function yRange(f) {
  let lo = Infinity, hi = -Infinity;
  const vals = f.smoothed.length ? f.smoothed : f.loss;
  for (const v of vals) {
    if (v === null || !Number.isFinite(v) || v <= 0) continue;
    lo = Math.min(lo, v);
    hi = Math.max(hi, v);
  }
  if (!Number.isFinite(lo)) return null;
  if (hi / lo < 1.5) [lo, hi] = [lo / 1.2, hi * 1.2];
  return [Math.log10(lo) - 0.05, Math.log10(hi) + 0.08];
}

export function drawLrFind() {
  const f = state.lrfind;
  const traces = [
    {
      type: "scatter",
      mode: "lines",
      name: "loss",
      x: f.lr,
      y: f.loss,
      line: { color: COLORS.raw, width: 1 },
      hovertemplate: "lr %{x:.4g}<br>loss %{y:.4f}<extra></extra>",
    },
    {
      type: "scatter",
      mode: "lines",
      name: "smoothed",
      x: f.lr,
      y: f.smoothed,
      line: { color: COLORS.smooth, width: 2 },
      hovertemplate: "lr %{x:.4g}<br>smoothed %{y:.4f}<extra></extra>",
    },
  ];
  const y = yRange(f);
  const s = f.result && f.result.suggestion;
  if (s && y) {
    traces.push({
      type: "scatter",
      mode: "lines+text",
      name: "suggestion",
      x: [s, s],
      y: [10 ** y[0], 10 ** y[1]],
      text: ["", ` ${fmt.lr(s)}`],
      textposition: "bottom right",
      textfont: { color: COLORS.mark, size: 12 },
      line: { color: COLORS.mark, width: 1.5, dash: "dash" },
      hovertemplate: `suggestion ${fmt.lr(s)}<extra></extra>`,
    });
  }
  const hasPoints = f.lr.length > 0;
  react(
    "lrfind-chart",
    traces,
    baseLayout({
      datarevision: f.version,
      margin: { l: 50, r: 12, t: 8, b: 38 },
      // no sweep yet: the axes' titles, no tick labels (they would meet at the origin)
      xaxis: axis({
        title: { text: "learning rate (log)" },
        type: "log",
        showticklabels: hasPoints,
        ...(hasPoints ? {} : { range: [-3, 0] }),
      }),
      yaxis: axis({
        title: { text: "loss (log)" },
        showticklabels: hasPoints,
        ...logAxis(y || [0, 1.5], (v) => String(v)),
      }),
      annotations: hasPoints
        ? []
        : [{ xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false, text: "no sweep yet", font: { color: COLORS.muted } }],
    }),
    SMALL_CONFIG,
  );
}
