// The overview stream (WS /ws/runs): one socket for every run, not one per run. First a "runs"
// snapshot of the newest runs, then "runs_changed" with the runs whose state changed (at most
// twice a second in all), and "run_deleted". Reconnects with backoff; a reconnect's snapshot
// brings the view up to date.

const NO_RETRY = new Set([1008, 1009]);
const MIN_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;

/** handlers: {rows(rows, snapshot), deleted(id), status(connection)} */
export function watchRuns(handlers) {
  let attempt = 0;
  const open = () => {
    handlers.status("connecting");
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws/runs`);
    ws.addEventListener("open", () => handlers.status("open"));
    ws.addEventListener("message", (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch {
        return;
      }
      if (msg.type === "runs") {
        attempt = 0;
        handlers.rows(msg.runs, true);
      } else if (msg.type === "runs_changed") {
        handlers.rows(msg.runs, false);
      } else if (msg.type === "run_deleted") {
        handlers.deleted(msg.id);
      }
    });
    ws.addEventListener("close", (event) => {
      const retry = !NO_RETRY.has(event.code);
      handlers.status(retry ? "closed" : "refused");
      if (retry) {
        const delay = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * 2 ** attempt++) * (0.75 + Math.random() / 2);
        setTimeout(open, delay);
      }
    });
  };
  open();
}
