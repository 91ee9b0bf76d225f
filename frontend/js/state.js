// The page's one state object. Modules read it and change it; render.js redraws from it.

import { LossSeries } from "./downsample.js";

export const CHART_BUCKETS = 2000; // loss buckets kept; each keeps its min and max: <= 4000 raw points
export const RATE_WINDOW_MS = 1500;
export const EVALS_KEPT = 1000; // evaluation points kept per trace (thinned beyond that): the chart stays bounded


export const state = {
  connection: "connecting", // "connecting" | "open" | "closed" | "refused"

  // The run, as the server last described it (the snapshot's RunPublic).
  run: null,
  status: null, // "paused" | "running" | "finished" | "diverged" | "stopped"
  detail: "",
  step: 0, // steps done so far (= index of the next step)
  stepsPerS: 0, // averaged over the steps messages of the last RATE_WINDOW_MS
  rateWindow: [], // [{at, steps, seconds}] of those messages

  // Confirmed hyperparameters (applied by the trainer), and the step each value applies from.
  hparams: null, // {lr, batch_size, eval_every, max_steps}
  since: { lr: 0, batch_size: 0, eval_every: 0, max_steps: 0 },
  initialHparams: null, // what step 0 used (the snapshot's step-0 change): labels, "examples seen"
  // Values this tab asked for and the server has not confirmed yet: {field: {value, at}}.
  pending: {},

  changes: [], // [{step, lr, batch_size, eval_every, max_steps, label}]
  evals: [], // [{step, train_loss, dev_loss}], losses may be null
  losses: new LossSeries(CHART_BUCKETS, 0.6), // every step's loss, downsampled, with its EMA

  view: { smoothing: 0.6, logScale: true },

  samples: { names: [], seed: null, step: null, temperature: null, busy: false, error: "" },
};
