// A zoom or pan on a plot, as plotly reports it ("plotly_relayout"), read the same way by the
// loss charts of both views.

/**
 * The range an event sets on axis `ax` ("xaxis", "yaxis"): [a, b] after a zoom or a pan (it
 * reports "xaxis.range[0]" and "xaxis.range[1]"); null after a reset ("xaxis.autorange"), or
 * after one that reports "xaxis.range" whole when `wholeIsReset` (a double click on a plot whose
 * layout fixes its range reports the range plotly first drew, which a chart that grows as its
 * run goes on must not keep); undefined when it leaves the axis alone.
 */
export function relayoutRange(event, ax, { wholeIsReset = false } = {}) {
  if (`${ax}.range[0]` in event && `${ax}.range[1]` in event) return [event[`${ax}.range[0]`], event[`${ax}.range[1]`]];
  if (Array.isArray(event[`${ax}.range`])) return wholeIsReset ? null : event[`${ax}.range`].slice();
  if (event[`${ax}.autorange`]) return null;
  return undefined;
}

/** Whether two ranges (null: none) are the same. */
export const sameRange = (a, b) => (a === null ? b === null : !!b && a[0] === b[0] && a[1] === b[1]);

/** After a draw: `handler` gets plot `id`'s zooms and pans, hooked once plotly has made the div
 *  a plot. Returns the plot's element when this call hooked it, else null. */
export function hookRelayout(id, handler) {
  const el = document.getElementById(id);
  if (!el || !el.on || el.dataset.zoomHooked) return null;
  el.on("plotly_relayout", handler);
  el.dataset.zoomHooked = "1";
  return el;
}
