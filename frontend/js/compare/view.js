// The compare view (/?compare=ID1,ID2,...) and the sweep view (/?sweep=ID): started by main.js
// instead of the single view when the address asks for one. Histories come from REST for the x
// range on screen (series.js); everything live from one overview socket (overview.js).

import { request } from "../api.js";
import { int } from "../format.js";
import { notify } from "../notify.js";
import { invalidate, setRenderers } from "../render.js";
import { state } from "../state.js";
import { afterPaint, loadPlotly } from "../vendor.js";
import { compareHref, MAX_RUNS, readAddress, writeIds } from "./address.js";
import { drawCompare, drawLive, nextLiveDraw, onZoom, pointsWanted, renderLegend } from "./chart.js";
import { initDiagSeries } from "./diagseries.js";
import { watchRuns } from "./overview.js";
import { take } from "./prefetch.js";
import { drawResult, renderSweepInfo } from "./result.js";
import { addLive, emptySeries, firstStep, load, stepAtX } from "./series.js";
import { initSweepForm } from "./sweep.js";
import { initTable, onRemove, onStart, renderStart, renderTable } from "./table.js";

export { compareAsked } from "./address.js";

const $ = (id) => document.getElementById(id);
const c = state.compare;
const RELOAD_MS = 150; // a zoom's points are asked once the zoom settles
const SWEEP_REFRESH_MS = 1000; // the sweep's record (its runs' outcomes) at most this often
const OPENING_MS = 3000; // the first draw waits for every run's points at most this long

export function startCompare() {
  const where = readAddress();
  c.mode = where.mode;
  c.ids = where.ids;
  document.body.dataset.view = "compare";
  $("compare").hidden = false;
  document.querySelector("main.layout").hidden = true;
  $("connection").hidden = true; // the single view's socket: not opened here
  $("run-info").textContent = c.mode === "sweep" ? "a sweep: its runs side by side, and what it found" : "runs side by side";
  document.querySelector(".sweep-form-panel").open = c.mode === "compare" && !c.ids.length;
  setRenderers({ ui: renderUi, charts: { compare: drawCompare, compareLive: drawLive, result: drawResult }, only: true });
  initControls();
  initDiagSeries();
  initTable();
  $("sweep-stop").addEventListener("click", stopSweep);
  initSweepForm();
  onRemove((id) => setIds(c.ids.filter((x) => x !== id)));
  onStart((ids) => setIds(ids));
  onZoom(() => reloadInView());
  watchRuns({
    rows: onRows,
    deleted(id) {
      if (c.ids.includes(id)) setIds(c.ids.filter((x) => x !== id));
      c.list = c.list.filter((r) => r.id !== id);
      invalidate();
    },
    status(s) {
      c.connection = s;
      invalidate();
    },
  });
  // the picker's list once the runs are in (it is not what the user waits for)
  const loaded = c.mode === "sweep" ? loadSweep(where.sweep) : Promise.all(c.ids.map(addRun));
  loaded.finally(refreshList);
  // one first draw of them all, not one per answer (each would redraw every run so far)
  c.opening = c.mode === "compare" && c.ids.length > 1;
  const opened = () => {
    if (!c.opening) return;
    c.opening = false;
    invalidate({ charts: ["compare"], urgent: true });
  };
  loaded.finally(opened);
  setTimeout(opened, OPENING_MS);
  // plotly.js (seconds of main thread on a slow CPU; from the browser's cache still ~0.2 s, which
  // the server's answer would wait for on a busy machine) once the first picture of every run is
  // on screen (js/preview.js draws it), or when the runs are that late
  loaded.finally(() => nextLiveDraw().then(() => afterPaint(loadPlotly)));
  setTimeout(loadPlotly, OPENING_MS);
  invalidate({ charts: ["compare", "result"] });
}

function renderUi() {
  const conn = $("compare-connection");
  conn.textContent = c.connection;
  conn.dataset.state = c.connection;
  $("compare-title").textContent =
    c.mode === "sweep" ? (c.sweep ? c.sweep.name : "sweep …") : `Compare ${c.ids.length} run${c.ids.length === 1 ? "" : "s"}`;
  const exp = $("compare-export");
  exp.href = `/api/runs/export?ids=${c.ids.join(",")}&format=csv`;
  if (c.ids.length) exp.removeAttribute("aria-disabled");
  else exp.setAttribute("aria-disabled", "true");
  $("compare-picker").hidden = c.mode !== "compare";
  const asCompare = $("sweep-as-compare");
  asCompare.hidden = c.mode !== "sweep" || !c.ids.length || c.ids.length > MAX_RUNS;
  asCompare.href = compareHref(c.ids);
  $("compare-empty").hidden = c.ids.length > 0;
  renderStart();
  renderPicker();
  renderLegend();
  renderTable();
  renderSweepInfo();
}

// ---- the runs shown -----------------------------------------------------------------------------
function setIds(ids) {
  const added = ids.filter((id) => !c.ids.includes(id));
  c.ids = ids.slice(0, c.mode === "sweep" ? ids.length : MAX_RUNS);
  for (const id of Object.keys(c.series)) if (!c.ids.includes(id)) delete c.series[id];
  if (c.mode === "compare") writeIds(c.ids);
  for (const id of added) addRun(id);
  c.version++;
  invalidate({ charts: ["compare"], urgent: true });
}

/** A run's record and its points, asked at once (a branched run's again, from where it branched,
 *  when its parent turns out to be in view). */
async function addRun(id) {
  c.series[id] ||= emptySeries();
  const first = firstStep(id);
  await Promise.all([refreshRecord(id), load(id, ...stepsInView(id), pointsWanted())]);
  if (c.runs[id] && firstStep(id) !== first) await load(id, ...stepsInView(id), pointsWanted());
  invalidate({ charts: ["compare"], urgent: true });
}

async function refreshRecord(id) {
  try {
    c.runs[id] = await (take(`record ${id}`) || request("GET", `/api/runs/${encodeURIComponent(id)}`));
  } catch (e) {
    if (e.status === 404 && c.ids.includes(id)) {
      notify(`run ${id}: not found (deleted?)`, "error");
      setIds(c.ids.filter((x) => x !== id));
    } else {
      notify(`run ${id}: ${e.message}`, "error");
    }
  }
  invalidate();
}

/** The steps of run `id` in the x range on screen: [s0, s1], or [0, null] (the whole run). */
function stepsInView(id) {
  if (!c.view.xRange) return [0, null];
  const [x0, x1] = c.view.xRange;
  return [stepAtX(id, c.view.xAxis, x0), Math.ceil(stepAtX(id, c.view.xAxis, x1))];
}

let reloadTimer = 0;
function reloadInView() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(async () => {
    await Promise.all(c.ids.filter((id) => c.runs[id]).map((id) => load(id, ...stepsInView(id), pointsWanted())));
    invalidate({ charts: ["compare"], urgent: true });
  }, RELOAD_MS);
}

// ---- the overview stream ------------------------------------------------------------------------
function onRows(rows, snapshot) {
  let redraw = false;
  for (const row of rows) {
    const known = c.list.findIndex((r) => r.id === row.id);
    if (known >= 0) c.list[known] = { ...c.list[known], name: row.name, status: row.status, step: row.step };
    else if (!snapshot) c.list.unshift({ id: row.id, name: row.name, status: row.status, step: row.step });
    if (c.mode === "sweep" && c.sweep && row.sweep === c.sweep.id && !c.ids.includes(row.id)) setIds([...c.ids, row.id]);
    if (!c.ids.includes(row.id)) continue;
    const before = c.live[row.id] || c.runs[row.id];
    c.live[row.id] = row;
    addLive(row);
    redraw = true;
    if (before && before.status !== row.status) {
      // a run that stopped or finished: its whole record (test loss...) and its full history
      refreshRecord(row.id).then(() => load(row.id, ...stepsInView(row.id), pointsWanted())).then(() => invalidate({ charts: ["compare"] }));
      if (c.mode === "sweep") refreshSweep();
    }
  }
  if (redraw) {
    c.version++;
    invalidate({ charts: ["compareLive", ...(c.mode === "sweep" ? ["result"] : [])] });
  } else {
    invalidate();
  }
}

// ---- the sweep view -----------------------------------------------------------------------------
async function loadSweep(id) {
  try {
    c.sweep = await request("GET", `/api/sweeps/${encodeURIComponent(id)}`);
  } catch (e) {
    c.error = e.message;
    notify(`sweep ${id}: ${e.message}`, "error", 60_000);
    return;
  }
  for (const r of c.sweep.runs) c.runs[r.id] = r;
  setIds(c.sweep.runs.map((r) => r.id));
  invalidate({ charts: ["result"] });
}

/** "Stop the sweep": its runs paused, the waiting ones out of the queue (they stay stored). */
async function stopSweep() {
  const button = $("sweep-stop");
  button.disabled = true;
  try {
    await request("DELETE", `/api/sweeps/${encodeURIComponent(c.sweep.id)}`);
  } catch (e) {
    notify(`stopping the sweep: ${e.message}`, "error");
  } finally {
    button.disabled = false;
  }
  refreshSweep();
}

let sweepTimer = 0;
let sweepAsked = 0;
function refreshSweep() {
  if (sweepTimer) return;
  const wait = Math.max(0, sweepAsked + SWEEP_REFRESH_MS - performance.now());
  sweepTimer = setTimeout(async () => {
    sweepTimer = 0;
    sweepAsked = performance.now();
    if (!c.sweep) return;
    try {
      c.sweep = await request("GET", `/api/sweeps/${encodeURIComponent(c.sweep.id)}`);
    } catch (e) {
      notify(`sweep: ${e.message}`, "error");
      return;
    }
    for (const r of c.sweep.runs) c.runs[r.id] = r;
    invalidate({ charts: ["result"] });
  }, wait);
}

// ---- the picker ---------------------------------------------------------------------------------
async function refreshList() {
  try {
    c.list = await request("GET", "/api/runs?limit=100");
  } catch (e) {
    notify(`runs: ${e.message}`, "error");
  }
  invalidate();
}

let pickerShown = "";
function renderPicker() {
  const select = $("compare-add-select");
  const choices = c.list.filter((r) => !c.ids.includes(r.id));
  const sig = JSON.stringify([choices.map((r) => [r.id, r.name, r.status]), c.ids.length]);
  if (sig === pickerShown) return;
  pickerShown = sig;
  const keep = select.value;
  select.replaceChildren(
    ...choices.map((r) => Object.assign(document.createElement("option"), { value: r.id, textContent: `${r.name} · ${r.status} · step ${int(r.step)}` })),
  );
  if (choices.some((r) => r.id === keep)) select.value = keep;
  const full = c.ids.length >= MAX_RUNS;
  $("compare-add").disabled = full || !choices.length;
  $("compare-add-note").textContent = full ? `at most ${MAX_RUNS} runs` : "";
}

// ---- the chart's controls -----------------------------------------------------------------------
function initControls() {
  $("compare-add").addEventListener("click", () => {
    const id = $("compare-add-select").value;
    if (id && !c.ids.includes(id)) setIds([...c.ids, id]);
  });
  // the compare view's own alignments (series.js): one long run need not flatten the others
  $("compare-x-axis").append(
    new Option("log steps", "logstep"),
    new Option("fraction of each run", "fraction"),
  );
  $("compare-x-axis").addEventListener("change", (e) => {
    c.view.xAxis = e.target.value;
    c.view.xRange = null; // another unit: the whole runs
    reloadInView();
    invalidate({ charts: ["compare"], urgent: true });
  });
  const smoothing = $("compare-smoothing");
  smoothing.addEventListener("input", () => {
    c.view.smoothing = Number(smoothing.value);
    $("compare-smoothing-value").textContent = c.view.smoothing.toFixed(3);
    invalidate({ charts: ["compare"], urgent: true });
  });
  $("compare-log-scale").addEventListener("change", (e) => {
    c.view.logScale = e.target.checked;
    c.view.yRange = null; // in the other scale's units
    invalidate({ charts: ["compare"], urgent: true });
  });
}
