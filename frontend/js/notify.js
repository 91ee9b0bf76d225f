// Brief messages to the user (websocket errors, failed requests): one toast at a time.

let timer = null;

/** Hide the toast if it shows an error: the value it complained about has been put right. */
export function dismissError() {
  const el = document.getElementById("toast");
  if (!el.hidden && el.dataset.kind === "error") {
    el.hidden = true;
    clearTimeout(timer);
  }
}

export function notify(text, kind = "error", ms = 6000) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.dataset.kind = kind;
  el.hidden = false;
  clearTimeout(timer);
  timer = setTimeout(() => {
    el.hidden = true;
  }, ms);
}
