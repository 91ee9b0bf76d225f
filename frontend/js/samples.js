// The samples panel: names drawn from the network as it is now (GET /api/runs/{id}/sample). "New" means
// made up: not a word of the dataset at all. A real name the network never trained on (one of
// the dev or test words) says so: "dev set".

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
  if (s.busy) return; // one draw at a time (the button only looks disabled meanwhile)
  const { n, t, problems } = readInputs();
  if (problems.length) {
    s.error = problems.join("; ");
    renderSamples();
    return;
  }
  if (!state.run) {
    s.error = "no run to sample from yet";
    renderSamples();
    return;
  }
  s.busy = true;
  s.error = "";
  renderSamples();
  const step = state.step;
  try {
    const data = await whileWaiting(sample(state.run.id, n, t));
    Object.assign(s, {
      names: data.names,
      new: data.new || [],
      split: data.split || [],
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

const LONG_NAME = 10; // characters: the longest that fits a column beside its badge at 3 columns

// What a name is, by the split it is a word of (the server's `split`), or new.
const BADGES = {
  new: { text: "new", title: "made up: not a word of the dataset" },
  train: { text: "", title: "one of the training words" },
  dev: { text: "dev set", title: "a real name, in the dev set: the network never trained on it" },
  test: { text: "test set", title: "a real name, in the test set: the network never trained on it" },
};

export function renderSamples() {
  const s = state.samples;
  const button = $("sample-button");
  // aria-disabled, not disabled: a disabled button drops the keyboard's focus to the page's body
  button.setAttribute("aria-disabled", String(s.busy));
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
    share.textContent = `${fmt.percent(s.newShare)} new: not in the dataset`;
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
    const split = s.split[i] ?? null;
    li.classList.toggle("new", isNew);
    li.dataset.new = String(isNew);
    li.dataset.split = split ?? "";
    li.dataset.name = name;
    const text = document.createElement("span");
    text.className = "name";
    text.textContent = name || "∅"; // the end token came first: an empty name
    li.append(text);
    const what = BADGES[isNew ? "new" : split] || BADGES.train;
    if (what.text) {
      const b = document.createElement("span");
      b.className = isNew ? "badge" : "badge real";
      b.textContent = what.text;
      li.append(b);
    }
    li.title = name ? `${name}: ${what.title}` : "an empty name: the network ended the word at once";
    return li;
  });
  // names longer than a column holds (an untrained network's): one a line, cut with an ellipsis
  // where even that is too narrow (the whole name in its title), never wrapped into lines that
  // read as names of their own
  const long = s.names.some((name) => name.length > LONG_NAME);
  if (list.classList.contains("long") !== long) list.classList.toggle("long", long);
  list.replaceChildren(...items);
  // a list that scrolls takes the focus, so that the keys scroll it (WCAG 2.1.1; axe's
  // scrollable-region-focusable); one that does not is no tab stop
  const scrolls = list.scrollHeight > list.clientHeight;
  if (scrolls !== list.hasAttribute("tabindex")) {
    if (scrolls) list.setAttribute("tabindex", "0");
    else list.removeAttribute("tabindex");
  }
}

