// The websocket to the current run: connects, reconnects with backoff, sends commands.
// Every server message goes to the handler given to connect(); the connection's state is
// kept in state.connection.

import { state } from "./state.js";

const NO_RETRY = new Set([1008, 1009]); // policy violation (origin), message too big: retrying will not help
const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

let socket = null;
let handlers = null;
let attempt = 0;
let retryTimer = null;

function url() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/ws/runs/current`;
}

/** handlers: {message(msg), change(), closed(event, willRetry)} */
export function connect(h) {
  handlers = h;
  open();
}

function open() {
  clearTimeout(retryTimer);
  state.connection = "connecting";
  handlers.change();
  const ws = new WebSocket(url());
  socket = ws;
  ws.addEventListener("open", () => {
    state.connection = "open";
    handlers.change();
  });
  ws.addEventListener("message", (event) => {
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      console.warn("not JSON from the server:", event.data);
      return;
    }
    if (msg.type === "snapshot") attempt = 0; // a working connection: start the backoff afresh
    handlers.message(msg);
  });
  ws.addEventListener("close", (event) => {
    if (socket !== ws) return;
    socket = null;
    const retry = !NO_RETRY.has(event.code);
    state.connection = retry ? "closed" : "refused";
    handlers.closed(event, retry);
    handlers.change();
    if (retry) {
      const delay = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** attempt) * (0.75 + Math.random() / 2);
      attempt++;
      retryTimer = setTimeout(open, delay);
    }
  });
}

/** Send a command; false (and nothing sent) when not connected. */
export function send(message) {
  if (!socket || socket.readyState !== WebSocket.OPEN) return false;
  socket.send(JSON.stringify(message));
  return true;
}
