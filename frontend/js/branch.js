// Branch: a new run from one of a run's checkpoints (GET /api/runs/{id}/checkpoints), with the
// learning rate or batch size changed if wanted -> POST /api/runs/{id}/branch. Its history
// begins with its parent's up to that step; the page then shows it.

import { branchRun, listCheckpoints } from "./api.js";
import { showRun } from "./address.js";
import * as fmt from "./format.js";
import { rangeProblem } from "./schema.js";

const $ = (id) => document.getElementById(id);

let parent = null; // the overview row of the run to branch

function showError(text) {
  const el = $("br-error");
  el.hidden = !text;
  el.textContent = text;
}

function checkpointLabel(c) {
  const dev = c.dev_loss === null || c.dev_loss === undefined ? "" : ` · dev ${fmt.loss(c.dev_loss)}`;
  return `step ${fmt.int(c.step)}${dev}`;
}

/** Open the dialog for `row` (a runs-list row: id, name, lr, batch_size). */
export async function openBranch(row) {
  parent = row;
  showError("");
  $("br-title").textContent = `Branch “${row.name}”`;
  const select = $("br-step");
  select.replaceChildren();
  select.disabled = true;
  $("br-create").disabled = true;
  $("br-lr").value = String(row.lr);
  $("br-batch-size").value = String(row.batch_size);
  $("br-name").value = "";
  const dialog = $("branch-dialog");
  if (!dialog.open) dialog.showModal();
  let checkpoints;
  try {
    checkpoints = await listCheckpoints(row.id);
  } catch (e) {
    showError(`checkpoints: ${e.message}`);
    return;
  }
  if (parent !== row) return; // opened again for another run meanwhile
  if (!checkpoints.length) {
    showError("this run has no checkpoint yet: let it train a moment");
    return;
  }
  const newest = [...checkpoints].sort((a, b) => b.step - a.step); // the latest first: the default
  select.replaceChildren(
    ...newest.map((c) => {
      const o = document.createElement("option");
      o.value = String(c.step);
      o.textContent = checkpointLabel(c);
      return o;
    }),
  );
  select.disabled = false;
  $("br-create").disabled = false;
}

/** The body: the step, and only what the user changed (else the parent's values carry on). */
function readForm() {
  const body = { step: Number($("br-step").value) };
  const problems = [];
  const lrText = $("br-lr").value.trim();
  const lr = Number(lrText);
  if (lrText !== "" && lr !== parent.lr) {
    const problem = rangeProblem("lr", "learning rate", $("br-lr").validity.badInput ? NaN : lr);
    if (problem) problems.push(problem);
    else body.lr = lr;
  }
  const bText = $("br-batch-size").value.trim();
  const b = Number(bText);
  if (bText !== "" && b !== parent.batch_size) {
    const problem = rangeProblem("batch_size", "batch size", $("br-batch-size").validity.badInput ? NaN : b);
    if (problem) problems.push(problem);
    else body.batch_size = b;
  }
  const name = $("br-name").value.trim();
  if (name) body.name = name;
  return { body, problems };
}

async function create(event) {
  event.preventDefault();
  if (!parent || $("br-step").disabled) return;
  const { body, problems } = readForm();
  if (problems.length) {
    showError(problems.join("; "));
    return;
  }
  const button = $("br-create");
  button.disabled = true;
  showError("");
  try {
    const child = await branchRun(parent.id, body); // the server checks the bounds, and says why
    $("branch-dialog").close();
    showRun(child.id, { push: true });
  } catch (e) {
    showError(e.why || e.message);
  } finally {
    button.disabled = false;
  }
}

export function initBranch() {
  $("branch-form").addEventListener("submit", create);
  $("br-cancel").addEventListener("click", () => $("branch-dialog").close());
}
