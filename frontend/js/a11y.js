// What the page says to screen readers: the run's status, each confirmed change and each draw of
// samples, in polite live regions (index.html's #live-status, #live-change, #live-samples: they
// speak without moving the focus); and the loss chart's text alternative: a line kept current
// (#chart-summary, the chart's aria-describedby; plotly's tick labels are SVG text) and, on demand,
// its recent evaluations as a table (#chart-table). The learning-rate plot gets its line too.

import * as fmt from "./format.js";
import { state } from "./state.js";
import { statusText } from "./statustext.js";

const $ = (id) => document.getElementById(id);
const TABLE_ROWS = 50; // the newest evaluations in the table

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

// ---- live regions -----------------------------------------------------------------------------
// What was announced last, per run: a snapshot of another run (or the first) sets it silently.
const heard = { runId: null, status: null, changes: 0, names: null };

/** A live region's text; the same text again is said again (cleared first, then written). */
function announce(id, text) {
  const el = $(id);
  if (el.textContent === text) {
    el.textContent = "";
    requestAnimationFrame(() => (el.textContent = text));
  } else {
    el.textContent = text;
  }
}

function announceRun() {
  const run = state.run;
  if (!run) return;
  if (heard.runId !== run.id) {
    Object.assign(heard, { runId: run.id, status: state.status, changes: state.changes.length });
    return;
  }
  if (state.status !== heard.status) {
    heard.status = state.status;
    const line = statusText(state).text; // what the status line shows
    announce("live-status", `${run.name} ${state.status} at step ${fmt.int(state.step)}${line ? `. ${line}` : ""}`);
  }
  if (state.changes.length > heard.changes) {
    const change = state.changes[state.changes.length - 1];
    announce("live-change", `confirmed: ${change.label}, from step ${fmt.int(change.step)}`);
  }
  heard.changes = state.changes.length;
}

/** A draw of samples (samples.js rebuilt the list: a new names array), once. */
function announceSamples() {
  const s = state.samples;
  if (s.busy || s.names === heard.names || !s.names.length) return;
  heard.names = s.names;
  const names = s.names.map((n) => n || "(empty)").join(", ");
  const share = s.newShare !== null && s.newShare !== undefined ? `, ${fmt.percent(s.newShare)} new` : "";
  announce("live-samples", `${s.names.length} names sampled${share}: ${names}`);
}

// ---- the charts' text alternatives --------------------------------------------------------------
function chartSummary() {
  const parts = [];
  if (state.losses.lastStep >= 0) parts.push(`minibatch loss ${fmt.loss(state.losses.lastValue)}`);
  const e = state.evals.last;
  if (e) {
    const dev = e.dev_loss !== null ? `dev ${fmt.loss(e.dev_loss)}` : "";
    const train = e.train_loss !== null ? `train ${fmt.loss(e.train_loss)}` : "";
    parts.push(`${[dev, train].filter(Boolean).join(", ")} at step ${fmt.int(e.step)}`);
  }
  if (!state.run) return "no run yet";
  return `step ${fmt.int(state.step)}: ${parts.length ? parts.join(", ") : "no losses yet"}`;
}

function lrSummary() {
  const h = state.hparams;
  if (!h) return "";
  const s = h.schedule && h.schedule.kind !== "constant" ? `, schedule ${fmt.schedule(h.schedule)}` : "";
  const now = state.lrs.lastStep >= 0 ? `effective ${fmt.lr(state.lrs.lastValue)} at step ${fmt.int(state.lrs.lastStep)}, ` : "";
  return `${now}base learning rate ${fmt.lr(h.lr)}${s}`;
}

let tableOf = null; // the evaluations' version the table shows

function renderTable() {
  const box = $("chart-table");
  if (box.hidden || tableOf === state.evals.version) return;
  tableOf = state.evals.version;
  const r = state.evals.recent;
  const rows = [];
  for (let k = r.length - 1; k >= Math.max(0, r.length - TABLE_ROWS); k--) {
    const i = (r.start + k) % r.capacity;
    const cell = (v) => `<td>${Number.isFinite(v) ? fmt.loss(v) : "—"}</td>`;
    rows.push(`<tr><th scope="row">${fmt.int(r.steps[i])}</th>${cell(r.values[0][i])}${cell(r.values[1][i])}</tr>`);
  }
  box.innerHTML = rows.length
    ? `<table><caption class="sr-only">The newest evaluations, newest first</caption>` +
      `<thead><tr><th scope="col">step</th><th scope="col">train loss</th><th scope="col">dev loss</th></tr></thead>` +
      `<tbody>${rows.join("")}</tbody></table>`
    : `<p class="muted small">no evaluation yet</p>`;
}

export function initA11y() {
  new MutationObserver(announceSamples).observe($("samples"), { childList: true });
  const button = $("chart-table-button");
  button.addEventListener("click", () => {
    const box = $("chart-table");
    box.hidden = !box.hidden;
    button.setAttribute("aria-expanded", String(!box.hidden));
    button.textContent = box.hidden ? "Show data as a table" : "Hide the table";
    tableOf = null;
    renderTable();
  });
}

/** With the figures, at each redraw of the single view. */
export function renderA11y() {
  announceRun();
  setText($("chart-summary"), chartSummary());
  setText($("lr-summary"), lrSummary());
  renderTable();
}
