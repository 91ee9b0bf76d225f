// The New-run form (a dialog opened by "New run"): the network's shape, its initialisation and
// optimizer, the data, and the starting hyperparameters and schedule -> POST /api/runs. The
// server validates; its 422 details are shown next to the button.

import { showRun } from "./address.js";
import { createRun, deleteDataset } from "./api.js";
import { refreshDatasets } from "./datalist.js";
import * as fmt from "./format.js";
import { notify } from "./notify.js";
import { invalidate } from "./render.js";
import { applySchema, defaultOf, defaults, rangeProblem } from "./schema.js";
import { state } from "./state.js";

const $ = (id) => document.getElementById(id);

const NUMBERS = [
  ["block_size", "nr-block-size", "block size", true],
  ["n_embd", "nr-n-embd", "embedding size", true],
  ["n_hidden", "nr-n-hidden", "hidden units", true],
  ["lr", "nr-lr", "learning rate", false],
  ["batch_size", "nr-batch-size", "batch size", true],
  ["max_steps", "nr-max-steps", "max steps", true],
  ["eval_every", "nr-eval-every", "evaluate every", true],
  ["seed", "nr-seed", "seed", true],
];

function fill(v) {
  for (const [key, id] of NUMBERS) $(id).value = String(v[key]);
  $("nr-init").value = v.init;
  $("nr-optimizer").value = v.optimizer;
  $("nr-momentum").value = String(v.momentum ?? defaultOf("momentum"));
  const s = v.schedule || { kind: "constant" };
  $("nr-schedule-kind").value = s.kind;
  $("nr-schedule-at").value = String(s.at ?? Math.round(v.max_steps / 2));
  $("nr-schedule-factor").value = String(s.factor ?? defaultOf("factor", "step"));
  $("nr-schedule-min-lr").value = String(s.min_lr ?? defaultOf("min_lr", "cosine"));
  fillDatasets(v.dataset);
  showDependent();
}

/**
 * The chosen dataset's suggested length (the server's, from its size: GET /api/datasets'
 * `suggested`) into max steps and evaluate every; with the advice when the list is short (fewer
 * steps than the lecture's), and what the built-in list is.
 */
let lengthTyped = false; // max steps or evaluate every typed in since the form opened: a dataset change keeps them

function suggestForDataset() {
  const d = chosenDataset();
  const s = d?.suggested;
  if (s) {
    $("nr-max-steps").value = String(s.max_steps);
    $("nr-eval-every").value = String(s.eval_every);
    const at = $("nr-schedule-at");
    if (Number(at.value) >= s.max_steps) at.value = String(Math.round(s.max_steps / 2));
  }
  showAdvice();
}

function showAdvice() {
  const d = chosenDataset();
  const s = d?.suggested;
  const advice = $("nr-advice");
  const text = s?.short
    ? `A short list (${fmt.int(d.words)} words, ${fmt.int(d.train_examples)} training examples) needs far fewer steps ` +
      `than the lecture's 200,000: ${fmt.int(s.max_steps)} steps are about ${fmt.approx(s.epochs)} passes over it ` +
      `at batch 32, an evaluation every ${fmt.int(s.eval_every)}. Longer, it overfits (the chart says when).`
    : "";
  advice.hidden = !text;
  if (advice.textContent !== text) advice.textContent = text;
  const about = $("nr-about");
  about.hidden = !d?.about;
  if (about.textContent !== (d?.about || "")) about.textContent = d?.about || "";
}

/** The shown run's settings as it started: "New run" then "Create" trains the same again. */
function currentValues() {
  const run = state.run;
  if (!run) return defaults();
  const h = state.initialHparams || run.hparams;
  return {
    ...run.config,
    lr: h.lr,
    batch_size: h.batch_size,
    eval_every: h.eval_every,
    max_steps: h.max_steps ?? run.hparams.max_steps,
    schedule: h.schedule || run.hparams.schedule,
  };
}

function fillDatasets(selected) {
  const select = $("nr-dataset");
  const want = selected ?? select.value;
  const list = state.datasets.length ? state.datasets : [{ id: "builtin", name: "built-in names", words: 0, vocab_size: 0, builtin: true }];
  const seen = {}; // uploads of the same name: "words.txt", "words.txt (2)", ... in the order they came
  select.replaceChildren(
    ...list.map((d) => {
      const o = document.createElement("option");
      o.value = d.id;
      const size = d.words ? ` · ${fmt.int(d.words)} words, ${d.vocab_size - 1} chars` : "";
      const when = !d.builtin && d.created_at ? ` · ${new Date(d.created_at * 1000).toLocaleDateString()}` : "";
      const n = (seen[d.name] = (seen[d.name] ?? 0) + 1);
      o.textContent = `${d.name}${d.builtin ? " (built-in)" : n > 1 ? ` (${n})` : ""}${size}${when}`;
      return o;
    }),
  );
  select.value = list.some((d) => d.id === want) ? want : list[0].id;
  showDeletable();
  showAdvice();
}

function chosenDataset() {
  return state.datasets.find((d) => d.id === $("nr-dataset").value);
}

function showDeletable() {
  const d = chosenDataset();
  $("nr-dataset-delete").disabled = !d || d.builtin;
}

/** Delete the chosen upload (the server refuses while a stored run uses it, and says so). */
async function deleteChosenDataset() {
  const d = chosenDataset();
  if (!d || d.builtin) return;
  if (!confirm(`Delete the word list "${d.name}" (${fmt.int(d.words)} words)?`)) return;
  try {
    await deleteDataset(d.id);
  } catch (e) {
    notify(`not deleted: ${e.why || e.message}`, "error");
    return;
  }
  notify(`word list "${d.name}" deleted`, "info");
  await refreshDatasets();
  fillDatasets(state.datasets.find((x) => x.builtin)?.id);
}

function showDependent() {
  $("nr-momentum-row").hidden = $("nr-optimizer").value !== "momentum";
  const kind = $("nr-schedule-kind").value;
  for (const el of document.querySelectorAll("#new-run-form .nr-step")) el.hidden = kind !== "step";
  for (const el of document.querySelectorAll("#new-run-form .nr-cosine")) el.hidden = kind !== "cosine";
}

/** The field's number, within the server's bounds for `field` (GET /api/schema), or undefined
 * after adding why to `problems`, in the page's one wording. */
function readNumber(id, label, problems, field, kind = null) {
  const input = $(id);
  const text = input.value.trim();
  const n = text === "" || input.validity.badInput ? NaN : Number(text);
  const problem = rangeProblem(field, label, n, kind);
  if (problem) {
    problems.push(problem);
    return undefined;
  }
  return n;
}

function readForm() {
  const problems = [];
  const body = { start: true };
  for (const [key, id, label] of NUMBERS) body[key] = readNumber(id, label, problems, key);
  body.init = $("nr-init").value;
  body.optimizer = $("nr-optimizer").value;
  if (body.optimizer === "momentum") body.momentum = readNumber("nr-momentum", "momentum", problems, "momentum");
  body.dataset = $("nr-dataset").value;
  const kind = $("nr-schedule-kind").value;
  if (kind === "step") {
    body.schedule = {
      kind,
      at: readNumber("nr-schedule-at", "schedule: at step", problems, "at", "step"),
      factor: readNumber("nr-schedule-factor", "schedule: factor", problems, "factor", "step"),
    };
  } else if (kind === "cosine") {
    body.schedule = { kind, min_lr: readNumber("nr-schedule-min-lr", "schedule: min lr", problems, "min_lr", "cosine") };
  } else {
    body.schedule = { kind: "constant" };
  }
  return { body, problems };
}

function showError(text) {
  const el = $("nr-error");
  el.hidden = !text;
  el.textContent = text;
}

let onCreated = null; // what opened the form wants to know: (run) => ..., or (null) when cancelled

async function create(event) {
  event.preventDefault();
  const { body, problems } = readForm();
  if (problems.length) {
    showError(problems.join("; "));
    return;
  }
  const button = $("nr-create");
  button.disabled = true;
  button.textContent = "Creating…";
  showError("");
  try {
    const run = await createRun(body); // it trains beside the others
    const done = onCreated;
    onCreated = null;
    $("new-run-dialog").close();
    showRun(run.id, { push: true }); // shown, and its address in the bar
    if (done) done(run);
  } catch (e) {
    showError(e.why || e.message);
  } finally {
    button.disabled = false;
    button.textContent = "Create";
    invalidate();
  }
}

/**
 * Open the form, prefilled with the shown run's settings. `dataset`: an id to choose instead
 * of the run's; `context`: a line at the top saying why the form opened; `then(run)`: called
 * with the new run, or with null when the form is closed without creating one.
 */
export async function openNewRun({ dataset = null, context = "", then = null } = {}) {
  showError("");
  if (onCreated) onCreated(null); // an earlier opener's form is gone
  onCreated = then;
  await applySchema($("new-run-dialog")); // the server's bounds and choices, before a value is chosen
  if (dataset) await refreshDatasets(); // it must be in the list to be chosen
  const values = currentValues();
  fill(dataset ? { ...values, dataset } : values);
  lengthTyped = false;
  suggestForDataset(); // a length for the chosen data's size
  const note = $("nr-context");
  note.hidden = !context;
  note.textContent = context;
  const dialog = $("new-run-dialog");
  if (!dialog.open) dialog.showModal();
  if (!dataset) {
    const before = chosenDataset()?.suggested;
    await refreshDatasets(); // the uploads of other tabs too
    fillDatasets();
    if (!before && !lengthTyped) suggestForDataset(); // the list had not come yet
  }
}

export function initNewRun() {
  $("new-run").addEventListener("click", () => openNewRun());
  $("new-run-form").addEventListener("submit", create);
  $("nr-cancel").addEventListener("click", () => $("new-run-dialog").close());
  $("new-run-dialog").addEventListener("close", () => {
    const done = onCreated;
    onCreated = null;
    if (done) done(null); // closed without a new run (Cancel, Escape)
  });
  $("nr-defaults").addEventListener("click", () => fill(defaults())); // the lecture's run: the server's defaults
  $("nr-optimizer").addEventListener("change", showDependent);
  $("nr-dataset").addEventListener("change", () => {
    showDeletable();
    if (lengthTyped) showAdvice();
    else suggestForDataset();
  });
  for (const id of ["nr-max-steps", "nr-eval-every"]) $(id).addEventListener("input", () => (lengthTyped = true));
  // the advice and what the chosen list is, under the data select
  for (const id of ["nr-about", "nr-advice"]) {
    const p = document.createElement("p");
    p.id = id;
    p.className = "small nr-context";
    p.hidden = true;
    $("nr-dataset-delete").after(p);
  }
  $("nr-dataset-delete").addEventListener("click", deleteChosenDataset);
  $("nr-schedule-kind").addEventListener("change", showDependent);
}
