// Brief messages to the user (websocket errors, failed requests): one toast at a time.

let timer = null;

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
