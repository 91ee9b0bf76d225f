// The line under the run's status: one text, made from the status message's data (its status,
// `cause`, step, the run's queue position and max steps now; how many runs train at once comes
// from GET /api/schema), never from its `detail`, which the server writes for people: where the
// page has no text of its own for a status and cause (an error, a divergence: the server says
// what went wrong), the detail is the text, as it is. The detail is always the line's title
// (hover). A hint is given only while it is true: a run that reached max steps asks for more
// only until max steps is raised above its step.

import * as fmt from "./format.js";
import { maxRunning } from "./schema.js";

const atStep = (s) => fmt.int(s.step);

function paused(s) {
  if (s.step === 0) return "Ready: press Start to train.";
  return `Paused at step ${atStep(s)}: press Resume to go on.`;
}

// status -> text: the status's own text, whatever its cause, but for the causes below
const TEXTS = {
  queued: (s) => {
    const n = s.run && s.run.queue_position;
    const at = maxRunning();
    const slots = at ? ` (${fmt.int(at)} ${at === 1 ? "run trains" : "runs train"} at once here)` : "";
    return n ? `Waiting for a free slot${slots}: number ${fmt.int(n)} in the queue.` : `Waiting for a free slot${slots}.`;
  },
  paused: paused,
  finished: (s) => {
    const max = s.hparams ? s.hparams.max_steps : null;
    if (max !== null && max > s.step) return `Max steps is now ${fmt.int(max)}: press Resume to train on.`;
    return `Reached max steps (${fmt.int(max ?? s.step)}): raise max steps (under “evaluation and length”) and resume, or start a new run.`;
  },
  interrupted: (s) => `Interrupted at step ${atStep(s)}: press Resume to go on from its last checkpoint.`,
};

// cause -> text, before the status's: where the cause says more than the status
const BY_CAUSE = {
  lr_find: () => "Waiting while the finder runs: finding the learning rate on a copy of it, then training on.",
  server_stopped: (s) => `The server stopped at step ${atStep(s)}: press Resume to go on.`,
  error: null, // the server's detail says what failed
  worker_died: null, // its detail says why its worker stopped
};

// A stopped run whose checkpoint the store could not write yet (a full disk): said after the
// status's text while the server's `checkpoint_held` flag is up, since a server stopped now
// would lose the steps since the last written one
const held = (s) =>
  ` Its checkpoint at step ${atStep(s)} is not written yet (see the server's health): the server keeps it in memory until it can.`;

/** {text, title}: the status line's text, and the server's detail for its title. */
export function statusText(s) {
  const make = s.cause in BY_CAUSE ? BY_CAUSE[s.cause] : TEXTS[s.status];
  const text = make ? make(s) : s.detail || "";
  return { text: s.checkpointHeld && make ? text + held(s) : text, title: s.detail || "" };
}
