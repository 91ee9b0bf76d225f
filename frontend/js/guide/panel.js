// The "Lecture path" panel (#guide, a non-modal <dialog> opened by #guide-open in the header):
// four steps through makemore part 2, each a button that creates real runs (guide/steps.js) and
// opens the view that shows them. The panel stays open across that navigation (sessionStorage),
// with the step just taken marked, so its text sits beside what it describes.

import { STEPS } from "./steps.js";

const KEY = "makemore-guide"; // {open: bool, done: step index or -1}
const $ = (id) => document.getElementById(id);

function remembered() {
  try {
    const v = JSON.parse(sessionStorage.getItem(KEY) || "null");
    return v && typeof v === "object" ? v : { open: false, done: -1 };
  } catch {
    return { open: false, done: -1 }; // storage off, or not ours: start closed
  }
}

function remember(v) {
  try {
    sessionStorage.setItem(KEY, JSON.stringify(v));
  } catch {
    // storage off: the panel just does not reopen after the next page load
  }
}

function el(tag, props = {}, children = []) {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

function build(dialog, done) {
  const status = el("p", { id: "guide-status", className: "small guide-status", role: "status" });
  const list = el("ol", { className: "guide-steps" });
  STEPS.forEach((step, i) => {
    const buttons = step.buttons.map((b) => {
      const button = el("button", { type: "button", className: "guide-go", textContent: b.label });
      button.dataset.guide = b.id;
      return button;
    });
    const item = el("li", { className: "guide-step", id: `guide-step-${i + 1}` }, [
      el("h3", { textContent: step.title }),
      el("p", { className: "small", textContent: step.text }),
      el("div", { className: "guide-buttons" }, buttons),
    ]);
    if (i === done) item.setAttribute("aria-current", "step");
    list.append(item);
  });
  const close = el("button", { type: "button", id: "guide-close", textContent: "Close", title: "Close (Esc)" });
  const head = el("div", { className: "guide-head" }, [
    el("h2", { id: "guide-title", tabIndex: -1, textContent: "Lecture path" }),
    el("span", { className: "spacer" }),
    close,
  ]);
  const intro = el("p", {
    className: "muted small",
    textContent: "Makemore part 2, one click a step: each creates real runs and shows them.",
  });
  dialog.replaceChildren(head, intro, list, status);
}

function setOpen(open) {
  const dialog = $("guide");
  const button = $("guide-open");
  if (open && !dialog.open) dialog.show(); // non-modal: the view it explains stays usable
  if (!open && dialog.open) dialog.close();
  button.setAttribute("aria-expanded", String(open));
  remember({ ...remembered(), open });
}

async function go(button) {
  const action = STEPS.flatMap((s, i) => s.buttons.map((b) => ({ ...b, step: i }))).find(
    (b) => b.id === button.dataset.guide,
  );
  const status = $("guide-status");
  const all = [...document.querySelectorAll("#guide .guide-go")];
  all.forEach((b) => b.setAttribute("aria-disabled", "true"));
  status.classList.remove("error");
  status.textContent = "Creating the runs…";
  try {
    const href = await action.act();
    remember({ open: true, done: action.step });
    location.assign(href);
  } catch (e) {
    status.classList.add("error");
    status.textContent = `Could not: ${e.why ?? e.message}`;
    all.forEach((b) => b.removeAttribute("aria-disabled"));
  }
}

function init() {
  const dialog = $("guide");
  const opener = $("guide-open");
  if (!dialog || !opener) return;
  const { open, done } = remembered();
  build(dialog, done);
  opener.addEventListener("click", () => {
    setOpen(!dialog.open);
    if (dialog.open) $("guide-title").focus();
  });
  dialog.addEventListener("click", (e) => {
    const target = e.target.closest("button");
    if (!target) return;
    if (target.id === "guide-close") {
      setOpen(false);
      opener.focus();
    } else if (target.dataset.guide && target.getAttribute("aria-disabled") !== "true") {
      go(target);
    }
  });
  dialog.addEventListener("keydown", (e) => {
    if (e.key !== "Escape") return;
    e.preventDefault(); // a non-modal dialog has no Escape of its own
    setOpen(false);
    opener.focus();
  });
  if (open) {
    setOpen(true);
    $(`guide-step-${done + 1}`)?.scrollIntoView({ block: "nearest" });
  }
}

init();
