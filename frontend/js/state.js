// The page's one state object. Modules read it and change it; render.js redraws from it.

import { EvalSeries, LossSeries, MinMaxSeries } from "./downsample.js";
import { StepTimes } from "./xaxis.js";

export const CHART_BUCKETS = 2000; // loss buckets kept; each keeps its min and max: <= 4000 raw points
export const RATE_WINDOW_MS = 1500;
export const RECENT_STEPS = 12_000; // the last steps' losses kept as they came: "follow" views in full detail
export const EVAL_BUCKETS = 1000; // evaluation buckets kept per loss (min and max each): <= 2000 points
export const RECENT_EVALS = 2000; // the last evaluations kept as they came
export const NOISE_KEPT = 1000; // noise-scale estimates kept (thinned likewise)
export const MARK_MERGE_S = 2; // changes less than this many seconds of training apart are one mark
export const TIME_KNOTS = 4000; // step -> training time knots kept (thinned likewise)

export const state = {
  connection: "connecting", // "connecting" | "open" | "closed" | "refused"

  // Which run the tab shows: the one its address names (?run=ID), or null: the newest (the run
  // socket follows `current`). `missing`: an id from the address the server does not have.
  target: null,
  missing: null,
  // What happened to the run while the tab was away (a server restart): {text, kind, resume}
  notice: null,

  // The runs list (WS /ws/runs): the newest runs' summaries, newest first; version bumps on change.
  runs: { list: [], connection: "connecting", version: 0, busy: {} }, // busy: {id: what is under way}
  selected: [], // ids of the runs chosen for comparison, in the order chosen (at most compare/address.js MAX_RUNS)

  // The run, as the server last described it (the snapshot's RunPublic).
  run: null,
  status: null, // "queued" | "running" | "paused" | "finished" | "diverged" | "interrupted"
  detail: "", // why, for people: shown, never parsed
  cause: null, // why, for the page: the server's cause ("user", "diverged", "lr_find", "server_stopped", ...)
  checkpointHeld: false, // a stopped run's checkpoint the store holds unwritten (a full disk)
  step: 0, // steps done so far (= index of the next step)
  stepsPerS: 0, // averaged over the steps messages of the last RATE_WINDOW_MS
  rateWindow: [], // [{at, steps, seconds}] of those messages

  // Confirmed hyperparameters (applied by the trainer), and the step each value applies from.
  hparams: null, // {lr, batch_size, eval_every, max_steps, schedule}
  since: { lr: 0, batch_size: 0, eval_every: 0, max_steps: 0, schedule: 0 },
  initialHparams: null, // what step 0 used (the snapshot's step-0 change): labels, "examples seen"
  // Values this tab asked for and the server has not confirmed yet: {field: {value, at}}.
  pending: {},

  changes: [], // [{step, lr, batch_size, eval_every, max_steps, schedule, label}]
  divergences: [], // [{step, detail, restoredFrom}]: where the run diverged, and whose weights came back
  evals: new EvalSeries(EVAL_BUCKETS, RECENT_EVALS), // train and dev losses, downsampled; .last for the figures
  overfit: null, // {best_step, best_dev, since_step} while the server sees the run overfit (js/overfit.js)
  losses: new LossSeries(CHART_BUCKETS, 0.6, RECENT_STEPS), // every step's loss, downsampled, with its EMA
  lrs: new MinMaxSeries(CHART_BUCKETS), // every step's effective learning rate, downsampled
  times: new StepTimes(TIME_KNOTS), // step -> seconds of training
  noise: [], // [{step, b_noise}]: the gradient noise scale at evaluations

  embeddings: null, // the last embeddings message: {step, chars, x, y, method}

  // The learning-rate finder: the sweep under way (points so far) or the last one.
  lrfind: {
    phase: "idle", // "idle" | "starting" (asked, no point yet) | "running" | "done"
    lr: [],
    loss: [],
    smoothed: [], // the server's once done; the page's own EMA meanwhile
    result: null, // lrfind_done without the points: {suggestion, method, step, batch_size, seconds, stopped_early}
    error: "",
    generation: 0, // bumped at each new sweep: a late answer about an older one is dropped
    version: 0, // bumped on every change (redraw when it moved)
  },

  // Reading the model.
  next: { context: "", data: null, error: "", version: 0 }, // next-character probabilities
  testLoss: null, // {step, test_loss, test_examples, ms}
  testLossError: "",
  testLossBusy: false,

  datasets: [], // GET /api/datasets
  upload: { busy: false, text: "", error: false },

  // xRange: the user's zoom, or null; follow: show the last N steps (0: the whole run);
  // hidden: the loss chart's traces hidden from its legend
  view: { smoothing: 0.6, logScale: true, xAxis: "step", xRange: null, follow: 0, hidden: {} },

  samples: { names: [], new: [], split: [], newShare: null, seed: null, step: null, temperature: null, busy: false, error: "" },

  // The compare view (/?compare=ID,... or /?sweep=ID: js/compare/) and the single view's ghost.
  compare: {
    mode: null, // null (the single view) | "compare" | "sweep"
    ids: [], // the runs shown, in the address's order
    runs: {}, // id -> RunPublic (config, test loss...), fetched when a run is added or its status changes
    live: {}, // id -> its row of the overview stream (WS /ws/runs): status, step, loss, eval, lr...
    series: {}, // id -> its history in view (compare/series.js)
    list: [], // GET /api/runs: the picker's choices
    sweep: null, // SweepPublic (the sweep view)
    connection: "connecting",
    view: { xAxis: "step", smoothing: 0.6, logScale: true, xRange: null, yRange: null, hidden: {} },
    opening: false, // the compare view's first points are on their way: no draw until they are in
    sort: { key: "created", dir: 1 },
    version: 0, // bumped whenever what the compare chart draws changed
    error: "",
    ghost: { id: "", choices: [], points: null, error: "" }, // a finished run behind the single view's run
  },
};
