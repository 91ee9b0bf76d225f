// Which run the tab shows, and the address that says so: `/?run=ID` opens that run (a link, a
// reload, the back button); `/` the newest (the run socket follows `current`). After the
// connection drops (a server restart) the tab comes back to the SAME run, and says what became
// of it while it was away.

import { getRun, updateRun } from "./api.js";
import { clearRun } from "./events.js";
import * as fmt from "./format.js";
import { notify } from "./notify.js";
import { invalidate } from "./render.js";
import { connect, disconnect, reconnect, retarget, runPath } from "./socket.js";
import { state } from "./state.js";

/** The run the address names, or null. */
export function runFromAddress() {
  return new URLSearchParams(location.search).get("run") || null;
}

function addressFor(id) {
  const url = new URL(location.href);
  if (id) url.searchParams.set("run", id);
  else url.searchParams.delete("run");
  return url.pathname + url.search + url.hash;
}

/** Put `id` in the address: a new history entry (push) or in place of this one. */
function setAddress(id, push) {
  if (runFromAddress() === id) return;
  const url = addressFor(id);
  if (push) history.pushState({ run: id }, "", url);
  else history.replaceState({ run: id }, "", url);
}

/**
 * Does the server have this run? false only when it says 404; a server that cannot be reached
 * may well have it (the socket keeps trying).
 */
async function exists(id) {
  try {
    await getRun(id);
    return true;
  } catch (e) {
    return e.status !== 404;
  }
}

function showMissing(id) {
  state.missing = id;
  state.notice = null;
  disconnect();
  clearRun();
  invalidate();
}

/**
 * Show run `id` (null: the newest, following new runs). `push`: a new history entry (the user
 * chose it: Back returns); else the address is replaced (or left alone: `address: false`).
 */
export async function showRun(id, { push = false, address = true } = {}) {
  if (address) setAddress(id, push);
  state.target = id;
  state.missing = null;
  state.notice = null;
  away = null;
  invalidate();
  if (id && !(await exists(id))) {
    if (state.target === id) showMissing(id); // (unless another was chosen meanwhile)
    return;
  }
  if (state.target !== id) return;
  reconnect(runPath(id));
}

// ---- coming back after the connection dropped -------------------------------------------------------
let away = null; // {id, status, step}: the run as the tab last saw it, while the socket is down
// the run as the tab saw it before the server said it stopped it (its socket closes next): the
// notice on coming back compares with this, not with the pause the server sent on its way out
let stopping = null;

const RESUMABLE = new Set(["paused", "interrupted", "diverged", "finished"]);

/** What became of the run between `before` (as the tab saw it) and `run` (the new snapshot). */
export function returnNotice(before, run) {
  const at = `step ${fmt.int(run.step)}`;
  const restarted = run.cause === "server_stopped";
  const was = before.status === "running" || before.status === "queued";
  if (run.status === before.status && run.step >= before.step) return null; // nothing happened to it
  const lost = before.step - run.step;
  if (run.status === "interrupted") {
    const why = restarted ? "The server restarted: this run was interrupted" : "This run was interrupted";
    const cut = lost > 0 ? ` (the tab had seen step ${fmt.int(before.step)}; the steps after its last checkpoint are lost)` : "";
    return { text: `${why} at ${at}${cut}. Resume?`, kind: "warn", resume: true };
  }
  if (run.status === "paused" && was) {
    const why = restarted ? "The server restarted: this run is paused" : "While this tab was disconnected, the run was paused";
    return { text: `${why} at ${at}. Resume?`, kind: "warn", resume: true };
  }
  if (run.status === "running" && run.step < before.step) {
    return { text: `This run went back to ${at} (its last checkpoint) and trains on from there.`, kind: "info", resume: false };
  }
  return {
    text: `While this tab was disconnected, the run became ${run.status} at ${at}.`,
    kind: "info",
    resume: RESUMABLE.has(run.status),
  };
}

let left = false;

/** The single view gives the page to another (the compare view, opened in place): its run's
 *  socket closes; going back in history then reloads the page. */
export function leaveSingle() {
  left = true;
  disconnect();
}

/** The run socket's handlers, wrapped: the address follows the run the tab shows. */
export function connectRun(handlers) {
  const wrapped = {
    message(msg) {
      if (msg.type === "snapshot") {
        if (away && away.id === msg.run.id) state.notice = returnNotice(away, msg.run);
        away = stopping = null;
        state.missing = null;
      } else if (msg.type === "status" && msg.cause === "server_stopped" && state.run && !stopping) {
        stopping = { id: state.run.id, status: state.status, step: state.step };
      } else if (msg.type === "status" && ["running", "queued"].includes(msg.status) && state.notice?.resume) {
        state.notice = null; // resumed (here, or in another tab): the question is answered
      }
      handlers.message(msg);
    },
    change: handlers.change,
    closed(event, willRetry, { handshake }) {
      if (event.code === 4410) {
        // the run was deleted (another tab, the API): the newest then
        const gone = state.run ? state.run.id : state.target;
        showRun(null).then(() => {
          state.notice = { text: `Run ${gone} was deleted; this is the newest run.`, kind: "info", resume: false };
          invalidate();
        });
        return;
      }
      if (!handshake && state.run) {
        // It was live: come back to this same run (not to whatever is newest by then).
        const seen = { id: state.run.id, status: state.status, step: state.step };
        away = stopping?.id === seen.id ? stopping : seen;
        stopping = null;
        if (state.target !== state.run.id) {
          state.target = state.run.id;
          setAddress(state.target, false);
          retarget(runPath(state.target));
        }
      } else if (handshake && willRetry) {
        // Refused (or no server): a deleted run is refused for good.
        const id = state.target;
        if (id) {
          exists(id).then((yes) => {
            if (!yes && state.target === id) showMissing(id);
          });
        }
      }
      handlers.closed(event, willRetry);
    },
  };
  const id = runFromAddress();
  state.target = id;
  addEventListener("popstate", () => {
    if (left) location.reload(); // the single view was left for another in this page: the address's view, afresh
    else showRun(runFromAddress(), { address: false });
  });
  if (!id) {
    connect(wrapped, runPath(null));
    return;
  }
  exists(id).then((yes) => {
    if (yes) connect(wrapped, runPath(id));
    else {
      connect(wrapped, null); // the socket's handlers, for a run chosen later
      showMissing(id);
    }
  });
}

// ---- drawing the notices -----------------------------------------------------------------------------
const $ = (id) => document.getElementById(id);

export function renderNotices() {
  const missing = $("run-missing");
  missing.hidden = !state.missing;
  const text = state.missing ? `There is no run ${state.missing} (deleted, or a mistyped address): choose one from the runs list.` : "";
  if (missing.textContent !== text) missing.textContent = text;
  if (state.missing && $("run-info").textContent !== `no run ${state.missing}`) $("run-info").textContent = `no run ${state.missing}`;

  const n = state.notice;
  const box = $("run-notice");
  box.hidden = !n;
  if (!n) return;
  box.dataset.kind = n.kind;
  if ($("run-notice-text").textContent !== n.text) $("run-notice-text").textContent = n.text;
  $("run-notice-resume").hidden = !(n.resume && RESUMABLE.has(state.status));
}

export function initNotices() {
  $("run-notice-close").addEventListener("click", () => {
    state.notice = null;
    invalidate();
  });
  $("run-notice-resume").addEventListener("click", async () => {
    const id = state.run && state.run.id;
    if (!id) return;
    const button = $("run-notice-resume");
    button.disabled = true;
    try {
      await updateRun(id, { status: "running" });
      state.notice = null;
    } catch (e) {
      notify(`resume: ${e.message}`);
    } finally {
      button.disabled = false;
      invalidate();
    }
  });
}
