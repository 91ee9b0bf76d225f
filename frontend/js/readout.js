// Reading the model: the probability of each next character after a context the user types
// (GET /api/runs/{id}/next, debounced; refreshed as the model learns), and the loss on the test
// split (POST /api/runs/{id}/evaluate-test), for the end of an experiment.

import { evaluateTest, nextChars } from "./api.js";
import * as fmt from "./format.js";
import { axis, baseLayout, COLORS, react, SMALL_CONFIG } from "./plots.js";
import { invalidate, whileWaiting } from "./render.js";
import { state } from "./state.js";

const $ = (id) => document.getElementById(id);
const DEBOUNCE_MS = 150;
const REFRESH_MS = 2000; // at most this often as the model learns (at evaluations)
const NOTE = { xref: "paper", yref: "paper", x: 0.5, y: 0.5, showarrow: false, font: { color: COLORS.muted } };

let timer = null;
let asked = 0; // the latest request: answers to older ones are dropped
let lastFetch = -Infinity;

/** `waiting`: the user typed and waits for the bars (render.js holds the plots back meanwhile). */
async function fetchNext(waiting = false) {
  if (!state.run) return;
  const id = ++asked;
  const context = state.next.context;
  const runId = state.run.id;
  lastFetch = performance.now();
  try {
    const request = nextChars(runId, context);
    const data = await (waiting ? whileWaiting(request) : request);
    if (id !== asked) return;
    state.next = { ...state.next, data, error: "", version: state.next.version + 1 };
  } catch (e) {
    if (id !== asked) return;
    // the bars of another context would mislead: none until the context is readable again
    const why = (e.why || e.message).replace(/^context: not/, "Not");
    state.next = { ...state.next, data: null, error: why, version: state.next.version + 1 };
  }
  invalidate({ charts: ["next"] });
}

/** The model changed (an evaluation, a new run): refresh the bars, not too often. */
export function modelChanged({ now = false } = {}) {
  if (now || performance.now() - lastFetch >= REFRESH_MS) fetchNext();
}

async function testLoss() {
  if (!state.run) return;
  state.testLossBusy = true;
  state.testLossError = "";
  invalidate();
  try {
    state.testLoss = await whileWaiting(evaluateTest(state.run.id));
  } catch (e) {
    state.testLossError = e.message;
  } finally {
    state.testLossBusy = false;
    invalidate();
  }
}

export function initReadout() {
  const input = $("next-context");
  input.addEventListener("input", () => {
    state.next.context = input.value;
    clearTimeout(timer);
    timer = setTimeout(() => fetchNext(true), DEBOUNCE_MS);
  });
  $("test-loss-button").addEventListener("click", testLoss);
}

export function renderReadout() {
  const n = state.next;
  const error = $("next-error");
  error.hidden = !n.error;
  if (error.textContent !== n.error) error.textContent = n.error;
  let info = "";
  const fold = $("next-fold");
  const folded = n.data && n.data.folded ? `read as “${n.data.read_as}”: this dataset has no capital letters` : "";
  fold.hidden = !folded;
  if (fold.textContent !== folded) fold.textContent = folded;
  if (n.data) {
    const d = n.data;
    let best = 0;
    for (let i = 1; i < d.probs.length; i++) if (d.probs[i] > d.probs[best]) best = i;
    const read = d.read_as ?? d.context;
    const after = read ? `after “${read}”` : "at the start of a word";
    const top = d.chars[best] === "." ? "the end (.)" : `“${d.chars[best]}”`;
    info = `${after} (the model sees “${d.window}”), step ${fmt.int(d.step)}: most likely ${top}, ${fmt.percent(d.probs[best])}`;
  }
  if ($("next-info").textContent !== info) $("next-info").textContent = info;

  const button = $("test-loss-button");
  button.disabled = state.testLossBusy || !state.run;
  const out = $("test-loss");
  const t = state.testLoss;
  let text = "";
  if (state.testLossError) text = state.testLossError;
  else if (state.testLossBusy) text = "evaluating…";
  else if (t) text = `test loss ${t.test_loss.toFixed(4)} at step ${fmt.int(t.step)}`;
  if (out.textContent !== text) out.textContent = text;
  out.classList.toggle("error", !!state.testLossError);
  if (t && !state.testLossError) {
    out.dataset.value = String(t.test_loss);
    out.dataset.step = String(t.step);
    out.title = `the exact loss over the ${fmt.int(t.test_examples)} test examples (${t.ms.toFixed(0)} ms)`;
  } else {
    delete out.dataset.value;
    delete out.dataset.step;
  }
}

export function drawNext() {
  const d = state.next.data;
  const chars = d ? d.chars : [];
  react(
    "next-chart",
    [
      {
        type: "bar",
        name: "p(next)",
        x: chars,
        y: d ? d.probs : [],
        marker: { color: d ? d.chars.map((c) => (c === "." ? COLORS.mark : COLORS.smooth)) : [] },
        hovertemplate: "next “%{x}”: %{y:.2%}<extra></extra>",
      },
    ],
    baseLayout({
      datarevision: state.next.version,
      margin: { l: 44, r: 10, t: 8, b: 36 },
      bargap: 0.15,
      xaxis: axis({ type: "category", tickangle: 0, tickfont: { family: "ui-monospace, Menlo, Consolas, monospace" } }),
      // no bars (a character the dataset lacks): an empty 0-100% axis and a word, not plotly's 0-400%
      yaxis: axis({
        type: "linear",
        title: { text: "probability" },
        tickformat: ".0%",
        ...(d ? { rangemode: "tozero" } : { range: [0, 1], autorange: false }),
      }),
      annotations: d ? [] : [{ ...NOTE, text: state.next.error ? "no prediction for this context" : "" }],
    }),
    SMALL_CONFIG,
  );
}
