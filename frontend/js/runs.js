// The runs list: the newest runs (name, status, step, last dev loss), kept live by one websocket
// for all of them (WS /ws/runs: a snapshot, then the runs whose state changed, at most twice a
// second). Per run: choose it (the run view shows it), resume or pause, rename, branch from a
// checkpoint, delete; a checkbox to choose runs to compare (/?compare=ID1,ID2,...).

import { deleteRun, updateRun } from "./api.js";
import { showRun } from "./address.js";
import { openBranch } from "./branch.js";
import { MAX_RUNS } from "./compare/address.js";
import * as fmt from "./format.js";
import { notify } from "./notify.js";
import { invalidate } from "./render.js";
import { initRoving, updateRoving } from "./roving.js";
import { LiveSocket, retryNow } from "./socket.js";
import { state } from "./state.js";
import { statusText } from "./statustext.js";

const $ = (id) => document.getElementById(id);
const ACTIVE = new Set(["running", "queued"]); // these pause; the others resume

// ---- the list's state, from the overview socket -------------------------------------------------------
function byNewest(a, b) {
  return (b.created_at ?? 0) - (a.created_at ?? 0);
}

function changed() {
  state.runs.version++;
  invalidate();
}

function onRuns(rows) {
  state.runs.list = [...rows].sort(byNewest); // (the selection stays: a chosen run may be older than these)
  changed();
}

function onRunsChanged(rows) {
  const list = state.runs.list;
  for (const row of rows) {
    const i = list.findIndex((r) => r.id === row.id);
    if (i >= 0) list[i] = row;
    else list.push(row); // a new run
  }
  list.sort(byNewest);
  changed();
}

function onRunDeleted(id) {
  state.runs.list = state.runs.list.filter((r) => r.id !== id);
  state.selected = state.selected.filter((s) => s !== id);
  saveSelected();
  changed();
}

function handle(msg) {
  if (msg.type === "runs") onRuns(msg.runs);
  else if (msg.type === "runs_changed") onRunsChanged(msg.runs);
  else if (msg.type === "run_deleted") onRunDeleted(msg.id);
  else if (msg.type === "error") console.warn("runs list:", msg.detail);
  if (!state.run && state.target === null && state.runs.list.length && state.connection === "closed") {
    retryNow(); // there was no run to show; there is one now
  }
}

// ---- actions ----------------------------------------------------------------------------------------
function rowOf(id) {
  return state.runs.list.find((r) => r.id === id);
}

/** One request about a run, its row's buttons waiting meanwhile; errors in a toast. */
async function act(id, what, call) {
  state.runs.busy[id] = what;
  changed();
  try {
    await call();
  } catch (e) {
    notify(`${what}: ${e.message}`);
  } finally {
    delete state.runs.busy[id];
    changed();
  }
}

function toggle(id) {
  const row = rowOf(id);
  if (!row) return;
  const status = ACTIVE.has(row.status) ? "paused" : "running";
  act(id, status === "paused" ? "pause" : "resume", () => updateRun(id, { status }));
}

function rename(id) {
  const row = rowOf(id);
  if (!row) return;
  const name = window.prompt(`A new name for run ${id}:`, row.name);
  if (name === null || name.trim() === "" || name.trim() === row.name) return;
  act(id, "rename", () => updateRun(id, { name: name.trim() }));
}

function remove(id) {
  const row = rowOf(id);
  if (!row) return;
  const training = ACTIVE.has(row.status) ? " It stops training." : "";
  if (!window.confirm(`Delete run “${row.name}” (${id}), its history and checkpoints?${training} This cannot be undone.`)) return;
  act(id, "delete", () => deleteRun(id));
}

// The runs chosen to compare, kept for the tab's session: a reload, or a look at the comparison
// and back, keeps them.
const SELECTED_KEY = "makemore-live.selected";

function saveSelected() {
  try {
    sessionStorage.setItem(SELECTED_KEY, JSON.stringify(state.selected));
  } catch {
    // private mode: the choice lasts as long as the page
  }
}

function loadSelected() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SELECTED_KEY) || "[]");
    if (Array.isArray(saved)) state.selected = saved.filter((id) => typeof id === "string").slice(0, MAX_RUNS);
  } catch {
    // no storage, or junk in it
  }
}

function select(id, on) {
  const chosen = state.selected.filter((s) => s !== id);
  if (on) {
    if (chosen.length >= MAX_RUNS) {
      notify(`at most ${MAX_RUNS} runs can be compared`);
    } else {
      chosen.push(id);
    }
  }
  state.selected = chosen;
  saveSelected();
  changed();
}

// ---- drawing: a row per run, kept (not rebuilt) so that focus and checkboxes stay put ------------------
const ROW_HTML = `
  <div class="run-line">
    <input class="run-select" type="checkbox">
    <button class="run-name" type="button"></button>
    <span class="run-hp" title="its learning rate and batch size now"></span>
    <span class="run-status"></span>
  </div>
  <div class="run-more">
    <span class="run-figures"><span class="run-step"></span><span class="run-dev"></span></span>
    <span class="run-actions">
      <button class="run-toggle" type="button"></button>
      <button class="run-rename" type="button">rename</button>
      <button class="run-branch" type="button">branch</button>
      <button class="run-delete" type="button">delete</button>
    </span>
  </div>`;

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

function setAttr(el, name, value) {
  if (el.getAttribute(name) !== value) el.setAttribute(name, value);
}

function newRow(id) {
  const li = document.createElement("li");
  li.className = "run-row";
  li.dataset.id = id;
  li.innerHTML = ROW_HTML;
  return li;
}

function fillRow(li, r, shownId, full) {
  const q = (sel) => li.querySelector(sel);
  li.dataset.status = r.status;
  setAttr(li, "aria-current", String(r.id === shownId));
  const busy = state.runs.busy[r.id];
  const name = q(".run-name");
  setText(name, r.name);
  name.title = `show run ${r.id}${r.parent ? ` (branched from ${r.parent.id} at step ${fmt.int(r.parent.step)})` : ""}`;
  const check = q(".run-select");
  const chosen = state.selected.includes(r.id);
  check.checked = chosen;
  check.disabled = !chosen && full;
  setAttr(check, "aria-label", `choose ${r.name} to compare`);
  check.title = !chosen && full ? `at most ${MAX_RUNS} runs can be compared` : "choose it to compare";
  const active = ACTIVE.has(r.status);
  const toggle = q(".run-toggle");
  setText(toggle, active ? "pause" : "resume");
  toggle.dataset.action = active ? "pause" : "resume";
  setAttr(toggle, "aria-label", `${active ? "pause" : "resume"} ${r.name}`);
  toggle.title = active ? (r.status === "queued" ? "take it out of the queue" : "pause") : "resume";
  setAttr(q(".run-rename"), "aria-label", `rename ${r.name}`);
  q(".run-rename").title = "rename";
  setAttr(q(".run-branch"), "aria-label", `branch ${r.name} from a checkpoint`);
  q(".run-branch").title = "branch: a new run from one of its checkpoints";
  setAttr(q(".run-delete"), "aria-label", `delete ${r.name}`);
  q(".run-delete").title = "delete";
  for (const b of li.querySelectorAll(".run-actions button")) b.disabled = !!busy;

  // the settings now, beside the name that says what it started with: a change shows
  if (r.lr !== undefined) setText(q(".run-hp"), `lr ${fmt.lr(r.lr)} · b ${fmt.int(r.batch_size)}`);
  const status = q(".run-status");
  const held = r.checkpoint_held ? " · not written" : ""; // its checkpoint waits in memory (a full disk)
  setText(status, (r.status === "queued" && r.queue_position ? `queued #${r.queue_position}` : r.status) + held);
  status.dataset.status = r.status;
  // the hover says what the run's own status line says, from the same data
  const { text, title } = statusText({ ...r, run: r, hparams: { max_steps: r.max_steps }, checkpointHeld: r.checkpoint_held });
  // (where the server's detail is the text itself, as for an error, it is said once)
  status.title = text === title || !title ? text : `${text}\n(${title})`;
  const step = q(".run-step");
  setText(step, `step ${fmt.int(r.step)}`);
  step.dataset.value = String(r.step);
  const dev = q(".run-dev");
  setText(dev, r.eval ? `dev ${fmt.loss(r.eval[2])}` : "dev —");
  dev.dataset.value = r.eval ? String(r.eval[2]) : "";
  dev.title = r.eval ? `dev loss at step ${fmt.int(r.eval[0])}` : "no evaluation yet";
}

let drawn = null; // what the list was last drawn from

export function renderRuns() {
  const shownId = state.run ? state.run.id : null;
  const key = `${state.runs.version}|${shownId}|${state.runs.connection}`;
  if (key === drawn) return;
  drawn = key;
  const ul = $("runs");
  const rows = new Map([...ul.children].map((li) => [li.dataset.id, li]));
  const full = state.selected.length >= MAX_RUNS;
  let before = ul.firstElementChild;
  for (const r of state.runs.list) {
    let li = rows.get(r.id);
    rows.delete(r.id);
    if (!li) li = newRow(r.id);
    fillRow(li, r, shownId, full);
    if (li !== before) ul.insertBefore(li, before);
    else before = before.nextElementSibling;
  }
  for (const li of rows.values()) li.remove(); // deleted, or no longer among the newest
  updateRoving(ul); // one tab stop for the whole list

  const n = state.runs.list.length;
  const conn = state.runs.connection;
  setText($("runs-info"), conn === "open" ? (n ? `${fmt.int(n)} newest first` : "no runs yet") : "connecting…");
  const k = state.selected.length;
  const link = $("compare-link");
  setText(link, k ? `Compare ${k} run${k === 1 ? "" : "s"}` : "Compare");
  if (k >= 2) {
    link.href = `/?compare=${state.selected.map(encodeURIComponent).join(",")}`;
    link.removeAttribute("aria-disabled");
    link.title = "the chosen runs side by side";
  } else {
    link.removeAttribute("href");
    link.setAttribute("aria-disabled", "true");
    link.title = "choose two runs or more with their checkboxes";
  }
}

let socket = null; // the list's overview socket (WS /ws/runs)

/** The list is left (the page shows another view): its socket closes. */
export function stopRuns() {
  if (socket) socket.close();
  socket = null;
}

export function initRuns() {
  loadSelected();
  const ul = $("runs");
  initRoving(ul);
  ul.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    const li = event.target.closest(".run-row");
    if (!button || !li) return;
    const id = li.dataset.id;
    if (button.classList.contains("run-name")) {
      if (!state.run || state.run.id !== id || state.target !== id) showRun(id, { push: true });
    } else if (button.classList.contains("run-toggle")) toggle(id);
    else if (button.classList.contains("run-rename")) rename(id);
    else if (button.classList.contains("run-branch")) {
      const row = rowOf(id);
      if (row) openBranch(row);
    } else if (button.classList.contains("run-delete")) remove(id);
  });
  ul.addEventListener("change", (event) => {
    const check = event.target.closest(".run-select");
    if (check) select(check.closest(".run-row").dataset.id, check.checked);
  });
  socket = new LiveSocket(
    "/ws/runs",
    {
      message: handle,
      opened() {
        state.runs.connection = "open";
        changed();
      },
      closed() {
        state.runs.connection = "closed";
        changed();
      },
    },
    { snapshotType: "runs" },
  );
  socket.open();
}
