// The lecture path's steps: what each button creates through the API (the same requests as any
// script would send: POST /api/runs, /api/sweeps, /api/runs/{id}/lr-find) and the address it
// opens afterwards. Each action returns that address; panel.js navigates there.

import { request } from "../api.js";

const runHref = (id) => `/?run=${encodeURIComponent(id)}`;
const compareHref = (ids) => `/?compare=${ids.map(encodeURIComponent).join(",")}`;
const createRun = (spec) => request("POST", "/api/runs", spec);

/** The lecture's step schedule: lr × 0.1 from step `at` on. */
const stepDown = (at) => ({ kind: "step", at, factor: 0.1 });

// Minibatch 32 for 20,000 steps; the full batch gets far fewer steps (each one sees every training
// example, ~6,000 times the work of a minibatch step): on the time axis the two cover a similar span.
export const MINIBATCH = { name: "minibatch 32", batch_size: 32, lr: 0.1, max_steps: 20_000, eval_every: 1000 };
export const FULL_BATCH = { name: "full batch", lr: 0.1, max_steps: 2000, eval_every: 100 };
export const EXACT = {
  name: "minibatch loss vs exact loss (eval every 500)",
  batch_size: 32,
  lr: 0.1,
  max_steps: 30_000,
  eval_every: 500,
};
export const SWEEP = {
  name: "lr sweep 0.001–1 · 20k steps",
  lr_range: { min: 0.001, max: 1, n: 7 },
  base: { max_steps: 20_000, eval_every: 2000 },
};
export const FINDER = { min_lr: 0.001, max_lr: 1, steps: 1000 };
export const DECAY = {
  name: "lecture: lr 0.1, ×0.1 at 100k",
  lr: 0.1,
  batch_size: 32,
  // max_steps left out: the server's default is the lecture's 200,000
  schedule: stepDown(100_000),
};
export const FAST_SGD = {
  name: "fastest SGD: scaled init · lr 0.1 · ×0.1 at 25k",
  init: "scaled",
  optimizer: "sgd",
  lr: 0.1,
  batch_size: 32,
  max_steps: 50_000,
  eval_every: 1000,
  schedule: stepDown(25_000),
};
export const FAST_ADAM = {
  name: "fastest Adam: scaled init · lr 0.01 · batch 64 · cosine 30k",
  init: "scaled",
  optimizer: "adam",
  lr: 0.01,
  batch_size: 64,
  max_steps: 30_000,
  eval_every: 1000,
  schedule: { kind: "cosine", min_lr: 0 },
};

/** The run the tab shows (?run=ID), else the newest; a fresh paused one when there is none. */
async function shownRun() {
  const id = new URLSearchParams(location.search).get("run") || "current";
  try {
    return await request("GET", `/api/runs/${encodeURIComponent(id)}`);
  } catch (e) {
    if (e.status !== 404) throw e;
    return createRun({ name: "lr finder: a fresh model", start: false });
  }
}

async function fullBatch() {
  const mini = await createRun(MINIBATCH);
  // every training example in every step: the exact gradient of the training loss
  const full = await createRun({ ...FULL_BATCH, batch_size: mini.dataset.train_examples });
  return compareHref([full.id, mini.id]);
}

async function exact() {
  return runHref((await createRun(EXACT)).id);
}

async function finder() {
  const run = await shownRun();
  await request("POST", `/api/runs/${encodeURIComponent(run.id)}/lr-find`, FINDER);
  return runHref(run.id);
}

async function sweep() {
  const made = await request("POST", "/api/sweeps", SWEEP);
  return `/?sweep=${encodeURIComponent(made.id)}`;
}

async function decay() {
  return runHref((await createRun(DECAY)).id);
}

async function fastest() {
  const sgd = await createRun(FAST_SGD);
  const adam = await createRun(FAST_ADAM);
  return compareHref([sgd.id, adam.id]);
}

/**
 * The path: a title, what to look at (two sentences), and its buttons ({id, label, act}). Step 3
 * has three: the finder, the sweep, the decay, in the lecture's order.
 */
export const STEPS = [
  {
    title: "Full batch against minibatch 32",
    text:
      "The full-batch run uses every training example in every step: the exact gradient, but each step is slow. " +
      "Minibatch 32 takes a noisy guess from 32 examples and makes hundreds of steps meanwhile: set the x axis " +
      "to training time and see which gets lower first (the lecture: “much better to have an approximate " +
      "gradient and just make more steps”).",
    buttons: [{ id: "fullbatch", label: "Train both side by side", act: fullBatch }],
  },
  {
    title: "The minibatch loss against the exact loss",
    text:
      "The faint line is each step's loss on its own 32 examples: it jumps because every minibatch is " +
      "different, and it is not the model's loss. The dots, every 500 steps, are the exact loss on the whole " +
      "training and dev splits: the numbers to trust (the lecture's “about 2.7 on the entire training set”).",
    buttons: [{ id: "exact", label: "Train one and watch both", act: exact }],
  },
  {
    title: "How do you determine this learning rate?",
    text:
      "The finder steps once per rate, on a copy of the run, so its valley (on a fresh model ~0.04) says " +
      "where the loss starts falling fastest, not which rate trains best; the sweep trains each of 7 rates " +
      "for 20,000 steps, and its best lands around 0.03–0.1. The lecture picked 0.1 and, once the loss " +
      "flattened, divided it by 10 at step 100,000.",
    buttons: [
      { id: "finder", label: "Learning-rate finder on this run", act: finder },
      { id: "sweep", label: "Sweep 7 rates × 20,000 steps", act: sweep },
      { id: "decay", label: "Lecture's run: ×0.1 at 100k", act: decay },
    ],
  },
  {
    title: "The fastest route to 2.17",
    text:
      "Scaled init with SGD 0.1, ×0.1 at step 25,000, reaches dev ≤ 2.17 after ~8.5 s of training; Adam 0.01, " +
      "batch 64, cosine over 30,000 steps gets 2.128 in ~17.5 s, against ~75 s for the lecture's 200,000 steps. " +
      "Those figures are from makemore's names.txt: on the built-in names (the 2017 SSA list) expect " +
      "~0.01–0.02 higher.",
    buttons: [{ id: "fastest", label: "Train both side by side", act: fastest }],
  },
];
