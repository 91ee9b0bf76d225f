// The loss charts' legends: HTML over the chart (plotly's own legend costs a fifth of each
// redraw, and its mode bar sat on top of it), a button per line (per run, in the compare view)
// that shows or hides it.

/**
 * A legend's button: `label` beside a swatch of `color` (faint: the swatch too), `data` its
 * data attributes (which line it stands for), pressed while the line shows; `toggle()` on click.
 */
export function legendButton({ label, color, data, faint = false, shown, toggle }) {
  const b = document.createElement("button");
  b.type = "button";
  Object.assign(b.dataset, data);
  if (faint) b.className = "faint";
  b.style.setProperty("--swatch", color);
  b.textContent = label;
  if (shown !== undefined) pressed(b, shown);
  b.addEventListener("click", toggle);
  return b;
}

/** Set a legend button pressed (its line shows) or not; a button already so is left alone. */
export function pressed(b, shown) {
  if (b.getAttribute("aria-pressed") !== String(shown)) b.setAttribute("aria-pressed", String(shown));
}
