// A plot's first picture, drawn before plotly.js has run (js/vendor.js): its line traces on a
// canvas, in their colours and widths, on the layout's axes (range, log or linear, ticks, grid,
// titles). Lines are what a person looks for first; plotly.js then draws the same data with
// everything else (markers, bars, hover, zoom) and the canvas goes. The last data drawn is kept
// on the element as `previewData`, as plotly keeps `data`.

const DPR_MAX = 2;
const PLOTLY_MARGIN = { l: 80, r: 80, t: 100, b: 80 }; // plotly's defaults, where a layout says none
const DASHES = { dash: [6, 4], dot: [2, 3], dashdot: [6, 3, 2, 3], longdash: [10, 4] };
const TICKS = 6; // about this many on a linear axis without its own

/** Draw the line traces of `data` on `layout`'s axes into a canvas over `el` (made once). */
export function drawPreview(el, data, layout) {
  const w = el.clientWidth, h = el.clientHeight;
  if (!w || !h) return;
  let canvas = el.querySelector(":scope > canvas.plot-preview");
  if (!canvas) {
    canvas = document.createElement("canvas");
    canvas.className = "plot-preview";
    canvas.setAttribute("aria-hidden", "true");
    el.append(canvas);
  }
  const dpr = Math.min(window.devicePixelRatio || 1, DPR_MAX);
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  Object.assign(canvas.style, { width: `${w}px`, height: `${h}px`, display: "block" });
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const m = { ...PLOTLY_MARGIN, ...(layout.margin || {}) };
  const box = { x: m.l, y: m.t, w: w - m.l - m.r, h: h - m.t - m.b };
  const lines = data.filter(isLine);
  el.previewData = lines;
  if (box.w <= 0 || box.h <= 0) return;
  const xa = scale(layout.xaxis || {}, lines.map((t) => t.x), box.x, box.x + box.w);
  const ya = scale(layout.yaxis || {}, lines.map((t) => t.y), box.y + box.h, box.y);
  const font = layout.font || {};
  drawAxes(ctx, xa, ya, box, font);
  ctx.save();
  ctx.beginPath();
  ctx.rect(box.x, box.y, box.w, box.h);
  ctx.clip();
  for (const t of lines) strokeTrace(ctx, t, xa, ya);
  ctx.restore();
}

/** A trace plotly would draw as a line (a scatter's default mode is lines past 20 points). */
function isLine(t) {
  const mode = t.mode ?? (t.x && t.x.length >= 20 ? "lines" : "lines+markers");
  return (t.type ?? "scatter") === "scatter" && t.visible !== false && t.visible !== "legendonly" &&
    mode.includes("lines") && isSeries(t.x) && isSeries(t.y);
}

function isSeries(a) {
  return Array.isArray(a) || ArrayBuffer.isView(a);
}

/** Data value -> pixel along one axis: its range (in axis units, log10 on a log axis), else the
 *  data's extent padded by 5%. */
function scale(axis, arrays, p0, p1) {
  const log = axis.type === "log";
  let range = Array.isArray(axis.range) ? axis.range.slice() : null;
  if (!range) {
    let lo = Infinity, hi = -Infinity;
    for (const a of arrays) {
      for (const v of a) {
        const u = toAxis(v, log);
        if (u === null) continue;
        if (u < lo) lo = u;
        if (u > hi) hi = u;
      }
    }
    if (!(lo <= hi)) [lo, hi] = [0, 1];
    if (hi - lo < 1e-12) [lo, hi] = [lo - 0.5, hi + 0.5];
    const pad = 0.05 * (hi - lo);
    range = [lo - pad, hi + pad];
  }
  const [r0, r1] = range;
  const at = (u) => p0 + ((u - r0) / (r1 - r0)) * (p1 - p0);
  return { axis, log, range, at, px: (v) => { const u = toAxis(v, log); return u === null ? null : at(u); } };
}

function toAxis(v, log) {
  if (v === null || v === undefined || !Number.isFinite(v)) return null;
  if (!log) return v;
  return v > 0 ? Math.log10(v) : null;
}

function strokeTrace(ctx, t, xa, ya) {
  const line = t.line || {};
  ctx.strokeStyle = line.color || "#7aa2ff";
  ctx.lineWidth = line.width ?? 2;
  ctx.setLineDash(DASHES[line.dash] || []);
  ctx.lineJoin = "round";
  ctx.beginPath();
  let open = false; // a missing value breaks the line, as plotly's connectgaps: false
  for (let i = 0; i < t.x.length; i++) {
    const x = xa.px(t.x[i]), y = ya.px(t.y[i]);
    if (x === null || y === null) {
      open = false;
      continue;
    }
    if (open) ctx.lineTo(x, y);
    else ctx.moveTo(x, y);
    open = true;
  }
  ctx.stroke();
}

/** The ticks of an axis in view: its own (tickvals), else 1-2-5 steps (powers of ten when log). */
function ticksOf(a) {
  const [lo, hi] = a.range[0] <= a.range[1] ? a.range : [a.range[1], a.range[0]];
  const inView = (v) => { const u = toAxis(v, a.log); return u !== null && u >= lo && u <= hi; };
  if (Array.isArray(a.axis.tickvals)) {
    const text = a.axis.ticktext;
    return a.axis.tickvals.map((v, i) => [v, text ? String(text[i]) : label(v)]).filter(([v]) => inView(v));
  }
  const vals = [];
  if (a.log) {
    for (let d = Math.ceil(lo); d <= Math.floor(hi); d++) vals.push(10 ** d);
  } else {
    const raw = (hi - lo) / TICKS;
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = [1, 2, 5, 10].map((k) => k * mag).find((s) => s >= raw) || 10 * mag;
    for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) vals.push(Number(v.toPrecision(12)));
  }
  return vals.map((v) => [v, label(v)]);
}

/** 200000 -> "200k", 0.5 -> "0.5": plotly's SI style, close enough for a first picture. */
function label(v) {
  const abs = Math.abs(v);
  const [div, suffix] = abs >= 1e9 ? [1e9, "G"] : abs >= 1e6 ? [1e6, "M"] : abs >= 1e3 ? [1e3, "k"] : [1, ""];
  return `${Number((v / div).toPrecision(4))}${suffix}`;
}

function drawAxes(ctx, xa, ya, box, font) {
  const color = font.color || "#444";
  ctx.font = `${font.size || 12}px ${font.family || "sans-serif"}`;
  ctx.fillStyle = color;
  ctx.lineWidth = 1;
  ctx.setLineDash([]);
  if (xa.axis.visible !== false) {
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const [v, text] of ticksOf(xa)) {
      const x = Math.round(xa.px(v)) + 0.5;
      grid(ctx, xa.axis, x, box.y, x, box.y + box.h);
      ctx.fillText(text, x, box.y + box.h + 6);
    }
    const title = xa.axis.title && xa.axis.title.text;
    if (title) ctx.fillText(title, box.x + box.w / 2, box.y + box.h + 22);
  }
  if (ya.axis.visible !== false) {
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const [v, text] of ticksOf(ya)) {
      const y = Math.round(ya.px(v)) + 0.5;
      grid(ctx, ya.axis, box.x, y, box.x + box.w, y);
      ctx.fillText(text, box.x - 6, y);
    }
    const title = ya.axis.title && ya.axis.title.text;
    if (title) {
      ctx.save();
      ctx.translate(box.x - 44, box.y + box.h / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "center";
      ctx.fillText(title, 0, 0);
      ctx.restore();
    }
  }
}

function grid(ctx, axis, x0, y0, x1, y1) {
  if (axis.showgrid === false) return;
  ctx.strokeStyle = axis.gridcolor || "rgba(128, 128, 128, 0.2)";
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1, y1);
  ctx.stroke();
}
