// Websockets that reconnect with backoff: the run's (/ws/runs/{id}: snapshot, live messages,
// commands) and the runs list's (/ws/runs). Every server message goes to the handler given; the
// run socket's state is kept in state.connection, the list's in state.runs.connection.

import { state } from "./state.js";

const NO_RETRY = new Set([1008, 1009]); // policy violation (origin), message too big: retrying will not help
const RUN_DELETED = 4410; // the server closes a deleted run's viewers with this
const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}${path}`;
}

/**
 * One websocket kept open: reopened with backoff after any close but those retrying cannot help.
 * handlers: {message(msg), opened(), closed(event, willRetry, { handshake })}; `handshake` is
 * true when the connection never opened (the server refused it, or is not there).
 */
export class LiveSocket {
  constructor(path, handlers, { snapshotType }) {
    this.path = path;
    this.handlers = handlers;
    this.snapshotType = snapshotType; // the message that proves the connection works
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
  }

  open(path = this.path) {
    this.path = path;
    this.close();
    this.attempt = 0;
    this._open();
  }

  /** Close for good (until open() again). */
  close() {
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000);
  }

  /** The next attempt now, not after the backoff (e.g. once the server is known to be back). */
  retryNow() {
    if (this.ws || this.timer === null) return;
    clearTimeout(this.timer);
    this.timer = null;
    this._open();
  }

  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  _open() {
    clearTimeout(this.timer);
    this.timer = null;
    const ws = new WebSocket(wsUrl(this.path));
    this.ws = ws;
    let opened = false;
    ws.addEventListener("open", () => {
      if (this.ws !== ws) return;
      opened = true;
      this.handlers.opened();
    });
    ws.addEventListener("message", (event) => {
      if (this.ws !== ws) return;
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        console.warn("not JSON from the server:", event.data);
        return;
      }
      if (msg.type === this.snapshotType) this.attempt = 0; // a working connection: start the backoff afresh
      this.handlers.message(msg);
    });
    ws.addEventListener("close", (event) => {
      if (this.ws !== ws) return; // closed on purpose (another run chosen)
      this.ws = null;
      const retry = !NO_RETRY.has(event.code) && event.code !== RUN_DELETED;
      this.handlers.closed(event, retry, { handshake: !opened });
      if (retry && this.ws === null) {
        const delay = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** this.attempt) * (0.75 + Math.random() / 2);
        this.attempt++;
        this.timer = setTimeout(() => this._open(), delay);
      }
    });
  }
}

// ---- the run's socket ----------------------------------------------------------------------------
let runSocket = null;

/** The path of a run's socket: `current` follows the newest run. */
export const runPath = (id) => `/ws/runs/${encodeURIComponent(id ?? "current")}`;

/** handlers: {message(msg), change(), closed(event, willRetry, {handshake})}. Opens `path`
 *  (null: nothing yet; reconnect() opens one later). */
export function connect(h, path) {
  runSocket = new LiveSocket(
    path,
    {
      message: h.message,
      opened() {
        state.connection = "open";
        h.change();
      },
      closed(event, willRetry, how) {
        state.connection = willRetry ? "closed" : "refused";
        h.closed(event, willRetry, how);
        h.change();
      },
    },
    { snapshotType: "snapshot" },
  );
  if (path === null) return;
  state.connection = "connecting";
  h.change();
  runSocket.open();
}

/** Where the next attempt to reconnect goes (the run shown, once `current` has dropped). */
export function retarget(path) {
  runSocket.path = path;
}

/** Show another run: the socket reopens on its address (its snapshot follows). */
export function reconnect(path) {
  state.connection = "connecting";
  runSocket.open(path);
}

/** Try the run socket again now, not after its backoff (a run to show has appeared). */
export function retryNow() {
  if (runSocket) runSocket.retryNow();
}

/** Stop the run socket (an address names a run the server does not have). */
export function disconnect() {
  runSocket.close();
  state.connection = "refused";
}

/** Send a command; false (and nothing sent) when not connected. */
export function send(message) {
  return runSocket ? runSocket.send(message) : false;
}
