// The runs list as ONE tab stop (a roving tabindex): Tab reaches one control of one run (the run
// shown, at first: its name), and leaves the list with the next press; Up, Down, Home and End move
// between runs (to their names: Enter or Space shows the run), Left and Right between a run's
// controls (compare, name, pause or resume, rename, branch, delete). Without it each run added six
// tab stops: the steering after 31 runs was 200 presses away.

const CONTROLS = ".run-select, .run-name, .run-toggle, .run-rename, .run-branch, .run-delete";
const NAME = 1; // the name's place among a row's controls

// Where the tab stop is: the row (by id, and its place should the row go) and the control in it.
// id null: the user has not been in the list yet; the run shown has the stop.
const at = { id: null, index: 0, col: NAME };
let inside = false; // the focus is (or was, until its row went) in the list

const controls = (li) => [...li.querySelectorAll(CONTROLS)];
const usable = (el) => el && !el.disabled;

function remember(el) {
  const li = el.closest(".run-row");
  at.id = li.dataset.id;
  at.index = [...li.parentElement.children].indexOf(li);
  at.col = Math.max(0, controls(li).indexOf(el));
}

/** The control Tab reaches in the list, or null when there are no runs. */
function stop(ul) {
  const rows = ul.children;
  if (!rows.length) return null;
  let li = null;
  if (at.id !== null) li = [...rows].find((r) => r.dataset.id === at.id) || rows[Math.min(at.index, rows.length - 1)];
  li ||= ul.querySelector('.run-row[aria-current="true"]') || rows[0];
  const el = controls(li)[at.col];
  return usable(el) ? el : li.querySelector(".run-name"); // a name is never disabled
}

/** After each redraw of the list: one control is tabbable, the others are reached by the keys. A
 *  row that held the focus and went (deleted) hands it to the run now in its place. */
export function updateRoving(ul) {
  const target = stop(ul);
  for (const el of ul.querySelectorAll(CONTROLS)) {
    const value = el === target ? "0" : "-1";
    if (el.getAttribute("tabindex") !== value) el.setAttribute("tabindex", value);
  }
  const lost = !document.activeElement || document.activeElement === document.body;
  if (inside && lost && target) target.focus();
}

function move(ul, el) {
  if (!el) return;
  remember(el);
  updateRoving(ul);
  el.focus();
}

export function initRoving(ul) {
  ul.addEventListener("focusin", (event) => {
    inside = true;
    if (event.target.matches(CONTROLS)) {
      remember(event.target);
      updateRoving(ul);
    }
  });
  ul.addEventListener("focusout", (event) => {
    if (event.relatedTarget && !ul.contains(event.relatedTarget)) inside = false;
  });
  document.addEventListener("pointerdown", (event) => {
    if (!ul.contains(event.target)) inside = false;
  });
  ul.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    const li = event.target.closest(".run-row");
    if (!li) return;
    const rows = [...ul.children];
    const i = rows.indexOf(li);
    const name = (row) => row && row.querySelector(".run-name");
    const mine = controls(li).filter(usable);
    const k = mine.indexOf(event.target);
    const to = {
      ArrowDown: () => name(rows[i + 1]),
      ArrowUp: () => name(rows[i - 1]),
      Home: () => name(rows[0]),
      End: () => name(rows[rows.length - 1]),
      ArrowRight: () => mine[k + 1],
      ArrowLeft: () => (k > 0 ? mine[k - 1] : null),
    }[event.key];
    if (!to) return;
    event.preventDefault(); // the list does not scroll under the keys; the focus scrolls it
    move(ul, to());
  });
}
