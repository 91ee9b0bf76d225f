// The address carries the view: /?compare=ID1,ID2,... (up to MAX_RUNS runs) or /?sweep=ID.
// A link or a reload opens the same comparison.

/** The most runs the compare view shows: the server's, written on the page (api/pages.py). */
export const MAX_RUNS = Number(document.documentElement.dataset.maxCompared);
if (!(MAX_RUNS > 0)) throw new Error("the page says no data-max-compared (api/pages.py writes it)");
const ID = /^[0-9a-f]{12}$/; // a run's or a sweep's id, as the server makes them

/** {mode: "compare" | "sweep" | null, ids: [...], sweep: id | null} from the address. */
export function readAddress(search = location.search) {
  const q = new URLSearchParams(search);
  if (q.has("sweep")) return { mode: "sweep", ids: [], sweep: q.get("sweep").trim() };
  if (!q.has("compare")) return { mode: null, ids: [], sweep: null };
  const ids = [...new Set(q.get("compare").split(",").map((s) => s.trim()).filter((s) => ID.test(s)))];
  return { mode: "compare", ids: ids.slice(0, MAX_RUNS), sweep: null };
}

export const compareAsked = () => readAddress().mode !== null;

/** The compare view's address for these runs (replacing the current entry: no history spam). */
export function writeIds(ids) {
  const url = `/?compare=${ids.join(",")}`;
  if (location.pathname + location.search !== url) history.replaceState(null, "", url);
}

export const runHref = (id) => `/?run=${encodeURIComponent(id)}`;
export const sweepHref = (id) => `/?sweep=${encodeURIComponent(id)}`;
export const compareHref = (ids) => `/?compare=${ids.join(",")}`;
