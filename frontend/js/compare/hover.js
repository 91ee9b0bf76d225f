// The compare chart's hover labels. It is two plots, one over the other: #compare-chart, the runs
// that do not train (it takes the mouse and the zoom), and #compare-live, the runs that train.
//
// Each plot labels its own point nearest the mouse (hovermode "closest"), so where a run that
// trains meets one that does not (a branch at its parent's step, a sweep's runs as they start)
// two labels showed at once. Only the plot whose point is nearer keeps its label; it is decided
// again whenever either plot's labels change (plotly.js hovers the live plot a moment later, and
// emits no event for it).
let mouseAt = null; // the mouse, px in the plot area (null: not on it)

/** The mouse is on the plot behind (it takes the zoom): the live plot over it shows the hover
 *  of its own runs at the same place. */
function hoverLive(event) {
  const live = document.getElementById("compare-live");
  const area = document.querySelector("#compare-chart .nsewdrag");
  if (!window.Plotly?.Fx || !area) return;
  const r = area.getBoundingClientRect();
  const [xpx, ypx] = [event.clientX - r.left, event.clientY - r.top];
  const inside = xpx >= 0 && ypx >= 0 && xpx <= r.width && ypx <= r.height;
  mouseAt = inside ? [xpx, ypx] : null;
  if (live && live.data && live.data.length) {
    if (inside) window.Plotly.Fx.hover(live, { xpx, ypx });
    else window.Plotly.Fx.unhover(live);
  }
  oneLabel();
}

function unhoverLive() {
  const live = document.getElementById("compare-live");
  mouseAt = null;
  if (window.Plotly?.Fx && live && live.data) window.Plotly.Fx.unhover(live);
}

/** The plot behind passes the mouse on to the live plot over it (which takes none itself). */
export function passMouse(el) {
  el.addEventListener("mousemove", hoverLive);
  el.addEventListener("mouseleave", unhoverLive);
}

/** Watch plot `id`'s hover labels, once plotly has drawn its hover layer. */
export function hookHover(id) {
  const layer = document.querySelector(`#${id} .hoverlayer`);
  if (!layer || layer.dataset.watched) return;
  new MutationObserver(oneLabel).observe(layer, { childList: true });
  layer.dataset.watched = "1";
}

/** How far plot `id`'s labelled point nearest the mouse is from it, in pixels (the plots share
 *  their axes); Infinity when it labels none. */
function distance(id) {
  const points = document.getElementById(id)?._hoverdata;
  const full = document.getElementById("compare-chart")?._fullLayout;
  if (!points || !points.length || !mouseAt || !full) return Infinity;
  const [mx, my] = mouseAt;
  return Math.min(...points.map((p) => Math.hypot(full.xaxis.d2p(p.x) - mx, full.yaxis.d2p(p.y) - my)));
}

function oneLabel() {
  const still = distance("compare-chart"), live = distance("compare-live");
  for (const [id, shown] of [["compare-chart", still <= live], ["compare-live", live < still]]) {
    const layer = document.querySelector(`#${id} .hoverlayer`);
    if (layer) layer.style.visibility = shown ? "" : "hidden";
  }
}
