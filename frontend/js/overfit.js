// The overfitting notice above the loss chart. The server decides (backend/runs/overfit.py: the
// dev loss rising for 3 evaluations, 2% above its best, while the training loss falls) and says
// so in the run's record and its eval messages (state.overfit); this module only shows it, with
// a one-click branch from the checkpoint at or before the best dev loss (checkpoints are thinned:
// the nearest one kept).

import { showRun } from "./address.js";
import { branchRun, listCheckpoints } from "./api.js";
import * as fmt from "./format.js";
import { notify } from "./notify.js";
import { invalidate } from "./render.js";
import { state } from "./state.js";

const $ = (id) => document.getElementById(id);

let busy = false;

/** The checkpoint to branch from: the latest at or before `step`, or null. */
export function checkpointAtOrBefore(checkpoints, step) {
  let best = null;
  for (const c of checkpoints) if (c.step <= step && (!best || c.step > best.step)) best = c;
  return best;
}

async function branchFromBest() {
  const run = state.run;
  const o = state.overfit;
  if (!run || !o || busy) return;
  busy = true;
  invalidate();
  try {
    const at = checkpointAtOrBefore(await listCheckpoints(run.id), o.best_step);
    if (!at) throw new Error(`no checkpoint at or before step ${fmt.int(o.best_step)}`);
    const child = await branchRun(run.id, { step: at.step, name: `${run.name} @ best dev (step ${at.step})`.slice(0, 100) });
    notify(`branched ${child.id} from step ${fmt.int(at.step)} (dev ${fmt.loss(at.dev_loss ?? o.best_dev)})`, "info", 5000);
    showRun(child.id, { push: true });
  } catch (e) {
    notify(`not branched: ${e.why || e.message}`, "error");
  } finally {
    busy = false;
    invalidate();
  }
}

export function initOverfit() {
  const box = document.createElement("div");
  box.id = "overfit-notice";
  box.className = "notice";
  box.dataset.kind = "warn";
  box.setAttribute("role", "status");
  box.hidden = true;
  const text = document.createElement("span");
  text.id = "overfit-text";
  const button = document.createElement("button");
  button.id = "overfit-branch";
  button.type = "button";
  button.className = "small";
  button.textContent = "Branch from the best-dev checkpoint";
  button.title = "A new run from the checkpoint at or before the best dev loss (this run keeps training)";
  button.addEventListener("click", branchFromBest);
  const buttons = document.createElement("span");
  buttons.className = "notice-buttons";
  buttons.append(button);
  box.append(text, buttons);
  $("chart-legend").before(box);
}

export function renderOverfit() {
  const box = $("overfit-notice");
  if (!box) return;
  const o = state.run ? state.overfit : null;
  box.hidden = !o;
  if (!o) return;
  const text =
    `Overfitting: the dev loss has risen since step ${fmt.int(o.since_step)} while the training loss falls. ` +
    `Its best, ${fmt.loss(o.best_dev)}, was at step ${fmt.int(o.best_step)}.`;
  if ($("overfit-text").textContent !== text) $("overfit-text").textContent = text;
  $("overfit-branch").disabled = busy;
}
