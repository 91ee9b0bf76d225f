// The table of the compared runs under the chart: name, its data, its sweep, model size, init and
// optimizer, current hyperparameters, steps, best and last dev loss, last train loss, test loss
// (if computed), status. A click on a column's
// header sorts by it (again: the other way). Live fields come from the overview stream, the rest
// from each run's record.

import { request } from "../api.js";
import * as fmt from "../format.js";
import { invalidate } from "../render.js";
import { state } from "../state.js";
import { runHref } from "./address.js";
import { colorOf, nameOf } from "./chart.js";

// sweeps' names by id, each asked for once (a run's record names its sweep by id)
const sweeps = {};
function sweepName(id) {
  if (state.compare.sweep && state.compare.sweep.id === id) return state.compare.sweep.name;
  if (!(id in sweeps)) {
    sweeps[id] = id;
    request("GET", `/api/sweeps/${encodeURIComponent(id)}`).then(
      (s) => {
        sweeps[id] = s.name;
        invalidate();
      },
      () => {},
    );
  }
  return sweeps[id];
}

/** What a row shows, from the stream's row (live) and the run's record. */
export function rowOf(id) {
  const run = state.compare.runs[id] || null;
  const live = state.compare.live[id] || null;
  const e = live ? live.eval : run && run.last_eval ? [run.last_eval.step, run.last_eval.train_loss, run.last_eval.dev_loss] : null;
  const cfg = run ? run.config : null;
  return {
    id,
    name: nameOf(id),
    dataset: run && run.dataset ? run.dataset.name : "",
    sweep: run && run.sweep ? sweepName(run.sweep) : "",
    config: cfg ? `${cfg.block_size}·${cfg.n_embd}·${cfg.n_hidden}` : "",
    init: cfg ? cfg.init : "",
    optimizer: cfg ? cfg.optimizer : "",
    params: run ? run.params : null,
    lr: live ? live.lr : run ? run.hparams.lr : null,
    batch: live ? live.batch_size : run ? run.hparams.batch_size : null,
    schedule: run && run.hparams.schedule ? run.hparams.schedule.kind : "constant",
    step: Math.max(live ? live.step : 0, run ? run.step : 0),
    max: live ? live.max_steps : run ? run.hparams.max_steps : null,
    best: live ? live.best_dev_loss : run ? run.best_dev_loss : null,
    dev: e ? e[2] : null,
    train: e ? e[1] : null,
    test: run && run.test ? run.test.test_loss : null,
    status: live ? live.status : run ? run.status : "",
    created: live ? live.created_at : run ? run.created_at : 0,
  };
}

// [key, header, cell text]
const COLUMNS = [
  ["name", "run", null],
  ["dataset", "data", (r) => r.dataset],
  ["sweep", "sweep", (r) => r.sweep],
  ["config", "model (block·embd·hidden)", (r) => r.config],
  ["init", "init", (r) => r.init],
  ["optimizer", "optimizer", (r) => r.optimizer],
  ["lr", "lr", (r) => fmt.lr(r.lr)],
  ["batch", "batch", (r) => fmt.int(r.batch)],
  ["schedule", "schedule", (r) => r.schedule],
  ["step", "steps", (r) => `${fmt.int(r.step)} / ${fmt.int(r.max)}`],
  ["best", "best dev", (r) => fmt.loss(r.best)],
  ["dev", "last dev", (r) => fmt.loss(r.dev)],
  ["train", "last train", (r) => fmt.loss(r.train)],
  ["test", "test", (r) => fmt.loss(r.test)],
  ["status", "status", (r) => r.status],
];

/** Sort values: missing numbers last whichever the direction. */
function compareRows(a, b, key, dir) {
  const x = a[key], y = b[key];
  const missing = (v) => v === null || v === undefined || v === "";
  if (missing(x) || missing(y)) return missing(x) - missing(y);
  if (typeof x === "number" && typeof y === "number") return dir * (x - y);
  return dir * String(x).localeCompare(String(y));
}

export function sortedRows() {
  const { key, dir } = state.compare.sort;
  return state.compare.ids.map(rowOf).sort((a, b) => compareRows(a, b, key, dir) || a.created - b.created);
}

let removeRun = () => {};
/** What the × of a row does (view.js). */
export function onRemove(f) {
  removeRun = f;
}

export function initTable() {
  const head = document.querySelector("#compare-table thead tr");
  head.replaceChildren(
    ...COLUMNS.map(([key, title]) => {
      const th = document.createElement("th");
      th.scope = "col";
      const b = document.createElement("button");
      b.type = "button";
      b.dataset.sort = key;
      b.textContent = title;
      b.addEventListener("click", () => {
        const s = state.compare.sort;
        state.compare.sort = { key, dir: s.key === key ? -s.dir : 1 };
        invalidate();
      });
      th.append(b);
      return th;
    }),
    Object.assign(document.createElement("th"), { scope: "col", textContent: "" }),
  );
}

let shown = "";
let built = ""; // the rows' order (and names) the table's elements were built for

export function renderTable() {
  const rows = sortedRows();
  const { key, dir } = state.compare.sort;
  const sig = JSON.stringify([rows, key, dir]);
  if (sig === shown) return;
  shown = sig;
  for (const th of document.querySelectorAll("#compare-table thead th")) {
    const b = th.querySelector("button");
    th.setAttribute("aria-sort", b && b.dataset.sort === key ? (dir > 0 ? "ascending" : "descending") : "none");
  }
  const order = JSON.stringify([state.compare.mode, rows.map((r) => [r.id, r.name])]);
  if (order === built) {
    // the same rows in the same order: only the figures that moved (live runs change twice a second)
    const trs = document.querySelectorAll("#compare-table tbody tr");
    rows.forEach((r, i) => {
      for (const td of trs[i].querySelectorAll("td[data-col]")) {
        const col = COLUMNS.find(([k]) => k === td.dataset.col);
        if (!col[2]) continue;
        const text = col[2](r);
        if (td.textContent !== text) td.textContent = text;
        if (td.dataset.col === "status") td.dataset.status = r.status;
      }
    });
    return;
  }
  built = order;
  document.querySelector("#compare-table tbody").replaceChildren(
    ...rows.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.run = r.id;
      for (const [k, , text] of COLUMNS) {
        const td = document.createElement("td");
        td.dataset.col = k;
        if (k === "name") {
          const a = document.createElement("a");
          a.href = runHref(r.id);
          a.textContent = r.name;
          a.style.setProperty("--swatch", colorOf(r.id));
          a.className = "run-name";
          td.append(a);
        } else {
          td.textContent = text(r);
          if (k === "status") td.dataset.status = r.status;
        }
        tr.append(td);
      }
      const td = document.createElement("td");
      if (state.compare.mode === "sweep") {
        tr.append(td); // a sweep's runs stay together
        return tr;
      }
      const x = document.createElement("button");
      x.type = "button";
      x.className = "remove";
      x.textContent = "×";
      x.title = `remove ${r.name} from the comparison`;
      x.setAttribute("aria-label", x.title);
      x.addEventListener("click", () => removeRun(r.id));
      td.append(x);
      tr.append(td);
      return tr;
    }),
  );
}

// ---- with no runs chosen: the latest runs, each with a box to tick, and a button that compares
// those ticked (the newest few ticked to begin with), instead of an empty chart ----------------
const SHOWN = 12; // the latest runs offered
const TICKED = 4; // ticked to begin with

let onChoose = () => {};
let shownKey = "";
const ticked = new Set();
let tickedOnce = false; // the newest few ticked once, when the list first comes

/** What the button does with the ids ticked (view.js: compare them). */
export function onStart(f) {
  onChoose = f;
}

function box() {
  let el = document.getElementById("compare-start");
  if (!el) {
    el = document.createElement("fieldset");
    el.id = "compare-start";
    el.className = "compare-start";
    const legend = document.createElement("legend");
    legend.textContent = "The latest runs: tick those to compare";
    const list = document.createElement("ul");
    list.className = "compare-start-list";
    const go = document.createElement("button");
    go.type = "button";
    go.id = "compare-start-go";
    go.className = "primary";
    go.textContent = "Compare the ticked runs";
    go.addEventListener("click", () => {
      const ids = state.compare.list.filter((r) => ticked.has(r.id)).map((r) => r.id);
      if (ids.length) onChoose(ids);
    });
    el.append(legend, list, go);
    document.getElementById("compare-empty").after(el);
  }
  return el;
}

/** Shown while nothing is compared and there are runs to pick from. */
export function renderStart() {
  const el = box();
  const rows = state.compare.mode === "compare" && !state.compare.ids.length ? state.compare.list.slice(0, SHOWN) : [];
  el.hidden = !rows.length;
  document.getElementById("compare-empty").textContent = rows.length
    ? "No runs chosen yet: tick some of the latest below, add any run further down, or start a sweep."
    : "No runs yet: start a sweep below, or a run on the main page.";
  const key = JSON.stringify(rows.map((r) => [r.id, r.name, r.status, r.step]));
  if (key === shownKey) return;
  if (!tickedOnce && rows.length) {
    tickedOnce = true;
    for (const r of rows.slice(0, TICKED)) ticked.add(r.id);
  }
  shownKey = key;
  el.querySelector("ul").replaceChildren(
    ...rows.map((r) => {
      const li = document.createElement("li");
      const label = document.createElement("label");
      const check = document.createElement("input");
      check.type = "checkbox";
      check.value = r.id;
      check.checked = ticked.has(r.id);
      check.addEventListener("change", () => (check.checked ? ticked.add(r.id) : ticked.delete(r.id)));
      label.append(check, ` ${r.name} `);
      const info = document.createElement("span");
      info.className = "muted small";
      info.textContent = `${r.status} · step ${fmt.int(r.step)}${r.sweep ? " · in a sweep" : ""}`;
      label.append(info);
      li.append(label);
      return li;
    }),
  );
}
