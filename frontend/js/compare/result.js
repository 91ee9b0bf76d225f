// The sweep's result chart: each finished run's final dev (and train) loss against the swept
// parameter (a log axis for learning rates), points appearing as runs finish; with two swept
// parameters, a heatmap of the final dev loss. "Open the best run" goes to the finished run with
// the lowest final dev loss. The counts say how many runs wait, train and are done.

import * as fmt from "../format.js";
import { axis, baseLayout, COLORS, react, SMALL_CONFIG } from "../plots.js";
import { state } from "../state.js";
import { runHref } from "./address.js";

const $ = (id) => document.getElementById(id);
const HPARAMS = new Set(["lr", "batch_size", "schedule"]); // the rest are in the run's config

/** The value of a swept parameter for a run (the schedule by its kind). */
export function valueOf(run, param) {
  const v = HPARAMS.has(param) ? run.hparams[param] : run.config[param];
  return param === "schedule" ? (v ? v.kind : "constant") : v;
}

const statusOf = (run) => (state.compare.live[run.id] || run).status;

/** The runs with an outcome: finished, with a last evaluation. */
function outcomes() {
  const s = state.compare.sweep;
  if (!s) return [];
  return s.runs
    .filter((r) => statusOf(r) === "finished" && r.status === "finished" && r.last_eval && r.last_eval.dev_loss !== null)
    .map((r) => ({ run: r, dev: r.last_eval.dev_loss, train: r.last_eval.train_loss }));
}

export function bestRun() {
  let best = null;
  for (const o of outcomes()) if (!best || o.dev < best.dev) best = o;
  return best;
}

/** Numbers spread over more than a decade, all positive (rates always): a log axis. */
function logScale(param, xs) {
  if (param === "lr") return true;
  if (!xs.every((x) => typeof x === "number" && x > 0)) return false;
  return Math.max(...xs) / Math.min(...xs) >= 10;
}

function lineResult(param, done) {
  const sorted = [...done].sort((a, b) => valueOf(a.run, param) - valueOf(b.run, param));
  const categorical = sorted.some((o) => typeof valueOf(o.run, param) !== "number");
  const x = sorted.map((o) => (categorical ? String(valueOf(o.run, param)) : valueOf(o.run, param)));
  const ids = sorted.map((o) => o.run.id);
  const trace = (name, key, color) => ({
    type: "scatter", mode: "lines+markers", name, x, y: sorted.map((o) => o[key]), customdata: ids,
    line: { color, width: 1.5 }, marker: { color, size: 8 },
    hovertemplate: `${param} %{x}<br>${name} %{y:.4f}<extra></extra>`,
  });
  const all = (state.compare.sweep?.runs || []).map((r) => valueOf(r, param));
  const log = !categorical && logScale(param, all);
  const nums = all.filter((v) => typeof v === "number" && (!log || v > 0));
  const lo = Math.min(...nums), hi = Math.max(...nums);
  const range = categorical || !nums.length ? undefined
    : log ? [Math.log10(lo) - 0.1, Math.log10(hi) + 0.1]
      : [lo - 0.05 * (hi - lo || 1), hi + 0.05 * (hi - lo || 1)];
  return {
    traces: [trace("train loss", "train", COLORS.train), trace("dev loss", "dev", COLORS.dev)], // dev on top
    layout: {
      xaxis: axis({
        title: { text: log ? `${param} (log scale)` : param },
        type: categorical ? "category" : log ? "log" : "linear",
        ...(range ? { range, autorange: false } : {}),
      }),
      yaxis: axis({ title: { text: "final loss" } }),
      showlegend: true,
      legend: { orientation: "h", y: 1.12, x: 0 },
    },
  };
}

const label = (v) => (typeof v === "number" ? String(Number(v.toPrecision(4))) : String(v));

const MARGIN = { l: 58, r: 16, t: 30, b: 44 };

/** Dark text on the bright (low-loss) cells, light on the dark ones. */
function textColors(z) {
  const lo = Math.min(...z), hi = Math.max(...z);
  return z.map((v) => ((v - lo) / (hi - lo || 1) < 0.6 ? "#0f1420" : "#f0f3fa"));
}

/**
 * Two swept parameters: a grid of cells coloured by the final dev loss, brighter for lower, each
 * labelled with it (a scatter of square markers: plotly's heatmap trace and its colour bar set
 * style attributes, which the page's Content Security Policy refuses). Cells of runs not finished
 * yet are outlined, empty.
 */
function heatmap([px, py], done) {
  const runs = state.compare.sweep.runs;
  const order = (p) => [...new Set(runs.map((r) => valueOf(r, p)))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const xs = order(px), ys = order(py);
  const el = $("sweep-result");
  const w = (el.clientWidth || 600) - MARGIN.l - MARGIN.r;
  const h = (el.clientHeight || 360) - MARGIN.t - MARGIN.b;
  const size = Math.max(8, Math.min(w / xs.length, h / ys.length) * 0.92);
  const cells = { x: [], y: [], z: [], text: [], ids: [] };
  const waiting = { x: [], y: [] };
  const outcome = new Map(done.map((o) => [o.run.id, o]));
  for (const r of runs) {
    const o = outcome.get(r.id);
    const x = label(valueOf(r, px)), y = label(valueOf(r, py));
    if (!o) {
      waiting.x.push(x);
      waiting.y.push(y);
      continue;
    }
    cells.x.push(x);
    cells.y.push(y);
    cells.z.push(o.dev);
    cells.text.push(fmt.loss(o.dev));
    cells.ids.push(r.id);
  }
  return {
    traces: [
      {
        type: "scatter", mode: "markers", name: "waiting", x: waiting.x, y: waiting.y, hoverinfo: "skip",
        marker: { symbol: "square-open", size, color: COLORS.muted },
      },
      {
        type: "scatter", mode: "markers+text", name: "dev loss", meta: "heatmap", x: cells.x, y: cells.y,
        text: cells.text, customdata: cells.ids, textfont: { color: textColors(cells.z), size: 12 },
        marker: { symbol: "square", size, color: cells.z, colorscale: "Viridis", reversescale: true, showscale: false },
        hovertemplate: `${px} %{x}<br>${py} %{y}<br>final dev loss %{marker.color:.4f}<extra></extra>`,
      },
    ],
    layout: {
      xaxis: axis({ title: { text: px }, type: "category", categoryorder: "array", categoryarray: xs.map(label) }),
      yaxis: axis({ title: { text: py }, type: "category", categoryorder: "array", categoryarray: ys.map(label) }),
    },
  };
}

export function drawResult() {
  const s = state.compare.sweep;
  if (!s) return true;
  const done = outcomes();
  const swept = s.swept.filter((p) => new Set(s.runs.map((r) => JSON.stringify(valueOf(r, p)))).size > 1);
  const params = swept.length ? swept : s.swept;
  const { traces, layout } = params.length >= 2 ? heatmap(params, done) : lineResult(params[0], done);
  react("sweep-result", traces, baseLayout({ margin: MARGIN, ...layout }), SMALL_CONFIG);
  return true;
}

/** The counts, the best run's link, the sweep's status. */
export function renderSweepInfo() {
  const box = $("sweep-panel");
  const s = state.compare.sweep;
  box.hidden = state.compare.mode !== "sweep" || !s;
  if (!s) return;
  const counts = { queued: 0, running: 0, finished: 0, other: 0 };
  for (const r of s.runs) {
    const st = statusOf(r);
    counts[st in counts ? st : "other"]++;
  }
  const el = $("sweep-counts");
  el.textContent = `${counts.queued} queued · ${counts.running} running · ${counts.finished} finished` +
    (counts.other ? ` · ${counts.other} paused or stopped` : "") + ` of ${s.runs.length}`;
  for (const k of ["queued", "running", "finished"]) el.dataset[k] = String(counts[k]);
  const best = bestRun();
  const a = $("sweep-best");
  a.hidden = !best;
  if (best) {
    a.href = runHref(best.run.id);
    a.dataset.run = best.run.id;
    a.textContent = `Open the best run: ${best.run.name} (dev ${fmt.loss(best.dev)})`;
  }
  $("sweep-status").textContent = s.status;
  $("sweep-status").dataset.status = s.status;
  $("sweep-stop").hidden = s.status !== "running";
}
