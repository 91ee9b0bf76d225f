// The live figures: step, speed, examples, epochs, last losses, status, run and connection.

import { examplesSeen } from "./events.js";
import * as fmt from "./format.js";
import { state } from "./state.js";
import { renderRunId } from "./copyid.js";
import { statusText } from "./statustext.js";

const $ = (id) => document.getElementById(id);

function setText(id, text) {
  const el = $(id);
  if (el.textContent !== text) el.textContent = text;
}

// The header's line on the run: its name first, whole (it wraps on a phone), then what it is,
// cut with an ellipsis where the bar has no room. Other views write plain text there: the two
// parts are made again when missing.
function renderRunInfo(name, about) {
  const info = $("run-info");
  let title = info.querySelector(".run-title");
  let desc = info.querySelector(".run-desc");
  if (!title || !desc) {
    title = document.createElement("strong");
    title.className = "run-title";
    desc = document.createElement("span");
    desc.className = "run-desc";
    info.replaceChildren(title, desc);
  }
  if (title.textContent !== name) title.textContent = name;
  if (desc.textContent !== about) desc.textContent = about;
  if (info.title !== `${name} · ${about}`) info.title = `${name} · ${about}`;
}

// The run's files: its weights, its history as CSV, and the run as a Python script that replays it.
function renderDownloads(run) {
  const nav = $("run-downloads");
  if (nav.hidden !== !run) nav.hidden = !run;
  if (!run) return;
  renderRunId(run);
  const base = `/api/runs/${encodeURIComponent(run.id)}`;
  const links = { "download-weights": `${base}/weights`, "download-history": `${base}/history?format=csv`, "download-code": `${base}/code` };
  for (const [id, href] of Object.entries(links)) {
    if ($(id).getAttribute("href") !== href) $(id).setAttribute("href", href);
  }
}

export function renderFigures() {
  const run = state.run;
  renderDownloads(run);
  const conn = $("connection");
  conn.dataset.state = state.connection;
  setText("connection", {
    open: "live",
    connecting: "connecting…",
    closed: "reconnecting…",
    refused: "disconnected",
  }[state.connection]);
  if (!run) {
    // none (yet, or the address names one the server does not have): nothing left of another run
    for (const id of ["step", "steps-per-s", "examples-seen", "epochs", "train-loss", "dev-loss", "status"]) setText(id, "—");
    for (const id of ["status-detail", "eval-at"]) setText(id, "");
    $("status").dataset.status = "";
    return;
  }

  const cfg = run.config;
  const optimizer = { sgd: "SGD", momentum: `momentum ${cfg.momentum ?? ""}`.trim(), adam: "Adam" }[cfg.optimizer] || cfg.optimizer;
  renderRunInfo(
    run.name,
    `run ${run.id} · MLP ${cfg.block_size} chars → ${cfg.n_embd}-d embeddings → ${cfg.n_hidden} tanh → ` +
      `${run.dataset.vocab_size} · ${fmt.int(run.params)} params · ${cfg.init} init, ${optimizer} · ` +
      `${run.dataset.name}: ${fmt.int(run.dataset.words)} words, ${fmt.int(run.dataset.train_examples)} training examples`,
  );

  const status = $("status");
  status.dataset.status = state.status;
  setText("status", state.status);
  const line = statusText(state);
  setText("status-detail", line.text);
  if ($("status-detail").title !== line.title) $("status-detail").title = line.title;
  $("status-detail").dataset.status = state.status;

  setText("step", fmt.int(state.step));
  setText("steps-per-s", state.status === "running" ? fmt.rate(state.stepsPerS) : "0");
  const seen = examplesSeen();
  setText("examples-seen", fmt.compact(seen));
  $("examples-seen").title = fmt.int(seen);
  setText("epochs", fmt.epochs(seen / run.dataset.train_examples));

  const e = state.evals.last;
  setText("train-loss", e ? fmt.loss(e.train_loss) : "—");
  setText("dev-loss", e ? fmt.loss(e.dev_loss) : "—");
  setText("eval-at", e ? `exact losses on the whole splits, at step ${fmt.int(e.step)}` : "");
}
