// The controls that steer the run: learning rate, batch size, schedule, evaluation period, max
// steps, start / pause / resume; and the chart's view controls (smoothing, log scale, x axis).
//
// A control SENDS the wanted value over the websocket and DISPLAYS the value the server
// confirmed (an "hparams" message, or the snapshot), with a pending note in between. Every tab
// on the run sees every change, since all of them come back as messages.

import { same } from "./events.js";
import * as fmt from "./format.js";
import { guardSliders } from "./keyguard.js";
import { dismissError, notify } from "./notify.js";
import { invalidate } from "./render.js";
import { clearFieldError, numberIn, readInt } from "./fielderror.js";
import { applySchema, bounds, defaultOf } from "./schema.js";
import { send } from "./socket.js";
import { state } from "./state.js";

const PENDING_MS = 10_000; // give up waiting for a confirmation after this long
const STORAGE_KEY = "makemore-live.view";
const FOLLOW = [0, 1000, 10_000]; // the "show" choices: the whole run, or the last N steps

const $ = (id) => document.getElementById(id);
const dragging = new Set(); // sliders the user is holding: do not move them under the pointer

/** A learning rate from the slider's log10 position, rounded to 3 significant digits. */
function lrFromSlider(v) {
  return Number((10 ** Number(v)).toPrecision(3));
}

function clamp(x, lo, hi) {
  return Math.min(hi, Math.max(lo, x));
}

/** Ask the server for a value; it is pending until an hparams/status message confirms it. */
function request(field, value, message) {
  if (field !== "status" && state.hparams && same(state.hparams[field], value)) {
    delete state.pending[field]; // already so: the server would not announce a change
    dismissError(); // nor is an error about an earlier value news any more
    invalidate();
    return;
  }
  if (!send(message)) {
    notify("not connected to the server: the change was not sent");
    invalidate();
    return;
  }
  const at = performance.now();
  state.pending[field] = { value, at };
  setTimeout(() => {
    if (state.pending[field] && state.pending[field].at === at) {
      delete state.pending[field];
      const shown = typeof value === "object" ? fmt.schedule(value) : value;
      notify(`no confirmation from the server for ${field.replace("_", " ")} ${shown}`);
      invalidate();
    }
  }, PENDING_MS);
  invalidate();
}

// A slider moved by its arrow keys (or a drag) changes with every step: its changes go at most
// this often per field, and the last one always goes. The server takes 20 messages a second at
// most (MAKEMORE_WS_MESSAGES_PER_S) and drops the excess, which could be the value the user
// stopped at.
const SEND_EVERY_MS = 100;
const outbox = {}; // field -> { sentAt, timer, value }

/** Ask for a new value of a hyperparameter (lr, batch_size, eval_every, max_steps, schedule). */
export function setHparam(field, value) {
  const o = (outbox[field] ||= { sentAt: -Infinity, timer: 0, value: undefined });
  o.value = value;
  const go = () => {
    o.timer = 0;
    o.sentAt = performance.now();
    request(field, o.value, { type: "set", [field]: o.value });
  };
  if (!o.timer) {
    const wait = o.sentAt + SEND_EVERY_MS - performance.now();
    if (wait <= 0) return go();
    o.timer = setTimeout(go, wait);
  }
  // pending until the timer sends the latest value, so that the confirmation of an earlier one
  // does not move the slider back under the keys
  state.pending[field] = { value, at: performance.now() };
  invalidate();
}

function trackDragging(slider) {
  slider.addEventListener("pointerdown", () => dragging.add(slider));
  for (const type of ["pointerup", "pointercancel", "change"]) {
    slider.addEventListener(type, () => dragging.delete(slider));
  }
}

function loadView() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}");
    if (typeof saved.smoothing === "number") state.view.smoothing = clamp(saved.smoothing, 0, 0.999);
    if (typeof saved.logScale === "boolean") state.view.logScale = saved.logScale;
    if (["step", "examples", "time"].includes(saved.xAxis)) state.view.xAxis = saved.xAxis;
    if (FOLLOW.includes(saved.follow)) state.view.follow = saved.follow;
  } catch {
    // no storage (private mode) or junk in it: keep the defaults
  }
}

function saveView() {
  try {
    const { smoothing, logScale, xAxis, follow } = state.view;
    localStorage.setItem(STORAGE_KEY, JSON.stringify({ smoothing, logScale, xAxis, follow }));
  } catch {
    // ignore
  }
}

export function initControls() {
  // learning rate
  const lrSlider = $("lr-slider");
  trackDragging(lrSlider);
  lrSlider.addEventListener("input", () => {
    const pending = $("lr-pending");
    pending.hidden = false;
    pending.textContent = `→ ${fmt.lr(lrFromSlider(lrSlider.value))}`;
    $("lr-input").value = String(lrFromSlider(lrSlider.value));
  });
  lrSlider.addEventListener("change", () => setHparam("lr", lrFromSlider(lrSlider.value)));
  guardSliders(); // Home, End, PageUp, PageDown on a run that trains: asked first
  // ... and a box for an exact rate (0.05, 2): the slider's steps cannot hit every value
  const lrInput = $("lr-input");
  lrInput.addEventListener("change", () => {
    const lr = numberIn(lrInput, "learning rate", "lr"); // the server's bounds, both
    if (lr !== null) setHparam("lr", lr);
  });
  lrSlider.addEventListener("change", () => clearFieldError(lrInput));
  // a field left with a refused value shows the run's again (renderControls), its error gone
  for (const id of ["lr-input", "batch-input", "eval-every-input", "max-steps-input"]) {
    $(id).addEventListener("blur", () => invalidate());
  }

  // batch size: a slider of powers of two, and a box for any value
  const batchSlider = $("batch-slider");
  const batchInput = $("batch-input");
  trackDragging(batchSlider);
  batchSlider.addEventListener("input", () => {
    const b = 2 ** Number(batchSlider.value);
    batchInput.value = String(b);
    const pending = $("batch-pending");
    pending.hidden = false;
    pending.textContent = `→ ${fmt.int(b)}`;
  });
  batchSlider.addEventListener("change", () => setHparam("batch_size", 2 ** Number(batchSlider.value)));
  batchInput.addEventListener("change", () => {
    const b = readInt(batchInput, "batch size", "batch_size", null, false); // the server checks the dataset's bound, and says why
    if (b !== null) setHparam("batch_size", b);
  });

  const evalInput = $("eval-every-input");
  evalInput.addEventListener("change", () => {
    const n = readInt(evalInput, "evaluate every", "eval_every");
    if (n !== null) setHparam("eval_every", n);
  });
  const maxInput = $("max-steps-input");
  maxInput.addEventListener("change", () => {
    const n = readInt(maxInput, "max steps", "max_steps");
    if (n === null) return;
    // at or below the current step, the run ends at once: say so, and ask
    const live = state.status === "running" || state.status === "paused";
    const ends = `The run is at step ${fmt.int(state.step)}: max steps ${fmt.int(n)} ends it now (it will show finished).`;
    if (live && n <= state.step && !window.confirm(`${ends} End it?`)) {
      maxInput.value = String(state.hparams ? state.hparams.max_steps : "");
      return;
    }
    setHparam("max_steps", n);
  });

  // run buttons (aria-disabled, not disabled, while waiting: a disabled button loses the focus)
  const runButton = (id, status, message) =>
    $(id).addEventListener("click", () => {
      if ($(id).getAttribute("aria-disabled") !== "true") request("status", status, message);
    });
  runButton("start", "running", { type: "resume" });
  runButton("resume", "running", { type: "resume" });
  runButton("pause", "paused", { type: "pause" });

  initSchedule();
  // the server's bounds and choices; the rate slider reaches its upper bound (its lower end and the batch's reach: index.html)
  applySchema().then(() => {
    if (bounds("lr").max) lrSlider.max = String(Math.log10(bounds("lr").max));
    scheduleShown = null; // the kinds are listed now: show the confirmed one
    invalidate({ chart: true }); // and a queued run's note (the chart's too) says how many train at once
  });

  // chart view
  loadView();
  const smoothing = $("smoothing");
  const log = $("log-scale");
  smoothing.value = String(state.view.smoothing);
  log.checked = state.view.logScale;
  smoothing.addEventListener("input", () => {
    state.view.smoothing = clamp(Number(smoothing.value), 0, 0.999);
    state.losses.setSmoothing(state.view.smoothing);
    saveView();
    invalidate({ charts: ["loss"], urgent: true });
  });
  log.addEventListener("change", () => {
    state.view.logScale = log.checked;
    saveView();
    invalidate({ charts: ["loss"], urgent: true });
  });
  const xAxis = $("x-axis");
  xAxis.value = state.view.xAxis;
  xAxis.addEventListener("change", () => {
    state.view.xAxis = xAxis.value;
    state.view.xRange = null; // a zoom in other units means nothing now
    saveView();
    invalidate({ chart: true, urgent: true });
  });
  const follow = $("follow");
  follow.value = String(state.view.follow);
  follow.addEventListener("change", () => {
    state.view.follow = Number(follow.value);
    state.view.xRange = null; // a zoom gives way to the chosen view
    saveView();
    invalidate({ chart: true, urgent: true });
  });
  state.losses.setSmoothing(state.view.smoothing);
}

// ---- the schedule: kind, and its parameters; applied with {"type": "set", "schedule": {...}} ----
let scheduleShown = null; // the confirmed schedule the inputs were last filled from

function showScheduleInputs() {
  const kind = $("schedule-kind").value;
  for (const el of document.querySelectorAll(".schedule .sched-step")) el.hidden = kind !== "step";
  for (const el of document.querySelectorAll(".schedule .sched-cosine")) el.hidden = kind !== "cosine";
}

function readSchedule() {
  const kind = $("schedule-kind").value;
  if (kind === "constant") return { kind };
  if (kind === "step") {
    const at = readInt($("schedule-at"), "schedule: at step", "at", "step");
    const factor = numberIn($("schedule-factor"), "schedule: factor", "factor", "step");
    return at === null || factor === null ? null : { kind, at, factor };
  }
  const minLr = numberIn($("schedule-min-lr"), "schedule: min lr", "min_lr", "cosine");
  return minLr === null ? null : { kind, min_lr: minLr };
}

/** Fill the inputs from a confirmed schedule (and sensible values for the other kinds). */
function fillSchedule(s) {
  const h = state.hparams;
  $("schedule-kind").value = s.kind;
  if (s.kind === "step") {
    $("schedule-at").value = String(s.at);
    $("schedule-factor").value = String(s.factor);
  } else if (h && !$("schedule-at").value) {
    $("schedule-at").value = String(Math.round(h.max_steps / 2)); // the lecture: halfway
    $("schedule-factor").value = String(defaultOf("factor", "step"));
  }
  if (s.kind === "cosine") $("schedule-min-lr").value = String(s.min_lr);
  else if (h && !$("schedule-min-lr").value) $("schedule-min-lr").value = String(Number((h.lr / 100).toPrecision(3)));
  showScheduleInputs();
}

function initSchedule() {
  $("schedule-kind").addEventListener("change", showScheduleInputs);
  $("schedule-apply").addEventListener("click", () => {
    const schedule = readSchedule();
    if (schedule) setHparam("schedule", schedule);
  });
  showScheduleInputs();
}

function renderSchedule(h, p) {
  const s = h.schedule || { kind: "constant" };
  const when = state.since.schedule ? ` (set at step ${fmt.int(state.since.schedule)})` : "";
  renderValue("schedule-value", `${fmt.schedule(s)} ✓${when}`, JSON.stringify(s));
  $("schedule-value").dataset.kind = s.kind;
  const pending = $("schedule-pending");
  pending.hidden = !p.schedule;
  if (p.schedule) pending.textContent = `→ ${fmt.schedule(p.schedule.value)} pending…`;
  // follow the confirmed schedule (another tab's too), unless the user is editing the inputs
  const editing = document.activeElement && document.activeElement.closest(".schedule");
  if (!p.schedule && !editing && !same(scheduleShown, s)) {
    scheduleShown = s;
    fillSchedule(s);
  }
  const running = state.hparams && state.run;
  $("schedule-apply").disabled = !running || state.connection !== "open" || "schedule" in p;
}

function since(field) {
  return `(from step ${fmt.int(state.since[field])})`;
}

/** A confirmed value: shown as text, and as data-value (exact) for scripts and tests. */
function renderValue(id, text, value) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
  el.dataset.value = String(value);
}

const RUN_BUTTONS = ["start", "pause", "resume"];

/** Start, Pause and Resume: only the one that applies is shown. The keyboard focus goes from the
 *  pressed one to the one that replaces it (else it would fall to the page's body). */
function renderButtons() {
  const s = state.status;
  const connected = state.connection === "open";
  const waiting = "status" in state.pending;
  const atMax = s === "finished" && state.hparams && state.step >= state.hparams.max_steps;
  const show = {
    start: s === "paused" && state.step === 0,
    pause: s === "running" || s === "queued", // a queued run's Pause takes it out of the queue
    resume: (s === "paused" && state.step > 0) || s === "diverged" || s === "finished" || s === "interrupted",
  };
  const focused = RUN_BUTTONS.includes(document.activeElement?.id);
  for (const [id, visible] of Object.entries(show)) {
    const b = $(id);
    b.hidden = !visible;
    const off = !connected || waiting || (id === "resume" && atMax);
    if (b.getAttribute("aria-disabled") !== String(off)) b.setAttribute("aria-disabled", String(off));
  }
  if (focused && !show[document.activeElement?.id]) {
    const now = RUN_BUTTONS.find((id) => show[id]);
    if (now) $(now).focus();
  }
  $("resume").title = atMax ? "the run reached max steps: raise them first" : "";
  $("new-run").classList.toggle("primary", s === "stopped");
}

// The run's value in a field the user is not typing in. An error said under the field was about
// what they had typed: it goes when the field shows the run's value again (after they leave it).
function showValue(input, value) {
  if (document.activeElement === input) return;
  const text = String(value);
  if (input.value === text) return;
  input.value = text;
  clearFieldError(input);
}

export function renderControls() {
  renderButtons();
  const h = state.hparams;
  if (!h) return;
  const p = state.pending;

  // learning rate
  renderValue("lr-value", `${fmt.lr(h.lr)} ✓ ${since("lr")}`, h.lr);
  const lrPending = $("lr-pending");
  const lrSlider = $("lr-slider");
  if (p.lr) {
    lrPending.hidden = false;
    lrPending.textContent = `→ ${fmt.lr(p.lr.value)} pending…`;
  } else if (!dragging.has(lrSlider)) {
    lrPending.hidden = true;
    lrSlider.value = String(clamp(Math.log10(h.lr), Number(lrSlider.min), Number(lrSlider.max)));
    showValue($("lr-input"), h.lr);
  }

  // batch size
  renderValue("batch-value", `${fmt.int(h.batch_size)} ✓ ${since("batch_size")}`, h.batch_size);
  const batchPending = $("batch-pending");
  const batchSlider = $("batch-slider");
  const batchInput = $("batch-input");
  if (p.batch_size) {
    batchPending.hidden = false;
    batchPending.textContent = `→ ${fmt.int(p.batch_size.value)} pending…`;
  } else if (!dragging.has(batchSlider)) {
    batchPending.hidden = true;
    batchSlider.value = String(clamp(Math.round(Math.log2(h.batch_size)), 0, Number(batchSlider.max)));
    showValue(batchInput, h.batch_size);
  }
  if (state.run) batchInput.max = String(state.run.dataset.train_examples);

  // evaluation period and length
  const evalInput = $("eval-every-input");
  const maxInput = $("max-steps-input");
  renderValue("eval-every-value", p.eval_every ? "pending…" : `${fmt.int(h.eval_every)} ✓`, h.eval_every);
  renderValue("max-steps-value", p.max_steps ? "pending…" : `${fmt.int(h.max_steps)} ✓`, h.max_steps);
  if (!p.eval_every) showValue(evalInput, h.eval_every);
  if (!p.max_steps) showValue(maxInput, h.max_steps);

  renderSchedule(h, p);

  $("smoothing-value").textContent = state.view.smoothing.toFixed(3);
}
