// The run's id on its header, selectable, with a button that copies it: the README's and the
// API docs' recipes (curl .../api/runs/ID) take the ids the page shows. Where the clipboard is
// refused (a page not served over https or localhost, a denied permission) the id is selected
// instead, for Ctrl+C.

const COPIED_MS = 2000;

function parts() {
  let box = document.getElementById("run-id-box");
  if (!box) {
    box = document.createElement("span");
    box.id = "run-id-box";
    box.className = "run-id-box";
    const code = document.createElement("code");
    code.id = "run-id";
    code.title = "this run's id (for the API: /api/runs/<id>)";
    const button = document.createElement("button");
    button.id = "copy-run-id";
    button.type = "button";
    button.className = "top-link";
    button.textContent = "Copy id";
    button.addEventListener("click", () => copy(code.textContent, button, code));
    box.append(code, button);
    document.getElementById("run-downloads").prepend(box);
  }
  return { code: box.querySelector("code"), button: box.querySelector("button") };
}

async function copy(id, button, code) {
  try {
    await navigator.clipboard.writeText(id);
    said(button, "Copied");
  } catch {
    const range = document.createRange();
    range.selectNodeContents(code);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    said(button, "Selected: Ctrl+C");
  }
}

function said(button, text) {
  button.textContent = text;
  button.dataset.done = "true";
  setTimeout(() => {
    button.textContent = "Copy id";
    delete button.dataset.done;
  }, COPIED_MS);
}

/** The run shown's id on the header (none: nothing to change, its nav is hidden). */
export function renderRunId(run) {
  if (!run) return;
  const { code, button } = parts();
  if (code.textContent !== run.id) {
    code.textContent = run.id;
    button.setAttribute("aria-label", `copy the run's id ${run.id}`);
  }
}
