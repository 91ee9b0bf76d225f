// The samples panel: names drawn from the network as it is now (GET /api/sample), the new ones
// (not among the training words) marked, with their share.

import { sample } from "./api.js";
import * as fmt from "./format.js";
import { whileWaiting } from "./render.js";
import { state } from "./state.js";

const $ = (id) => document.getElementById(id);

function readInputs() {
  const n = Number($("sample-n").value);
  const t = Number($("sample-temp").value);
  const problems = [];
  if (!Number.isInteger(n) || n < 1 || n > 1000) problems.push("n: a whole number from 1 to 1000");
  if (!Number.isFinite(t) || t <= 0 || t > 10) problems.push("temperature: more than 0, at most 10");
  return { n, t, problems };
}

async function drawSamples(event) {
  event.preventDefault();
  const s = state.samples;
  const { n, t, problems } = readInputs();
  if (problems.length) {
    s.error = problems.join("; ");
    renderSamples();
    return;
  }
  s.busy = true;
  s.error = "";
  renderSamples();
  const step = state.step;
  try {
    const data = await whileWaiting(sample(n, t));
    Object.assign(s, {
      names: data.names,
      new: data.new || [],
      newShare: data.new_share ?? null,
      seed: data.seed,
      step: data.step ?? step,
      temperature: t,
    });
  } catch (e) {
    s.error = e.message;
  } finally {
    s.busy = false;
    renderSamples();
  }
}

export function initSamples() {
  $("sample-form").addEventListener("submit", drawSamples);
}

export function renderSamples() {
  const s = state.samples;
  const button = $("sample-button");
  button.disabled = s.busy;
  button.textContent = s.busy ? "Sampling…" : "Sample";
  const error = $("sample-error");
  error.hidden = !s.error;
  error.textContent = s.error;
  $("sample-info").textContent = s.names.length
    ? `${s.names.length} names at step ${fmt.int(s.step)}, temperature ${s.temperature}, seed ${s.seed}`
    : "";
  const share = $("sample-new-share");
  if (s.names.length && s.newShare !== null) {
    share.hidden = false;
    share.textContent = `${fmt.percent(s.newShare)} new: not among the training words`;
    share.dataset.value = String(s.newShare);
  } else {
    share.hidden = true;
    share.textContent = "";
    delete share.dataset.value;
  }
  const list = $("samples");
  const items = s.names.map((name, i) => {
    const li = document.createElement("li");
    const isNew = !!s.new[i];
    li.classList.toggle("new", isNew);
    li.dataset.new = String(isNew);
    li.dataset.name = name;
    const text = document.createElement("span");
    text.className = "name";
    text.textContent = name || "∅"; // the end token came first: an empty name
    li.append(text);
    if (isNew) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = "new";
      li.append(badge);
    }
    li.title = name
      ? `${name}${isNew ? ": made up (not a training word)" : ": one of the training words"}`
      : "an empty name: the network ended the word at once";
    return li;
  });
  list.replaceChildren(...items);
}
