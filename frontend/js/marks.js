// The marks on the step-based charts: where the hyperparameters changed, and where the run
// diverged and whose weights it got back.
//
// A slider dragged or stepped with the arrow keys sends a change per position: 300 of them in a
// few seconds. Changes less than MERGE_S seconds of training apart are one mark, at the first of
// them, labelled with the values they ended at. Marks closer than MARK_PX on screen are drawn as
// one, and only as many carry a label as fit side by side (newest first, at most MAX_LABELS); a
// small triangle at the top of every mark tells the rest on hover.

import { vline } from "./chartkit/axes.js";
import { changeLabel } from "./events.js";
import * as fmt from "./format.js";
import { COLORS } from "./plots.js";
import { MARK_MERGE_S as MERGE_S, state } from "./state.js";

const MARK_PX = 6;
const LABEL_PX = 16; // a rotated label's width, and a little room
const MAX_LABELS = 20;
const HOVER_LINES = 6;

/** The changes, merged: [{step, last, label, count, hover}], in step order. */
export function changeGroups() {
  const groups = [];
  let g = null;
  for (const c of state.changes) {
    const t = state.times.at(c.step);
    if (g && t - g.time < MERGE_S) {
      g.last = c;
      g.count++;
      g.time = t;
    } else {
      g = { step: c.step, before: g ? g.last : state.initialHparams, last: c, count: 1, time: t };
      groups.push(g);
    }
  }
  for (const group of groups) {
    group.label = group.before ? changeLabel(group.last, group.before) : group.last.label;
    group.hover =
      group.count > 1
        ? `step ${fmt.int(group.step)}–${fmt.int(group.last.step)}: ${group.label} (${group.count} changes)`
        : `step ${fmt.int(group.step)}: ${group.label}`;
  }
  return groups;
}

/**
 * The marks in view, drawn: `X` maps a step to x, `range` is the x range shown, `width` the
 * plot area's width in pixels. Returns {shapes, annotations, trace}: a dotted line per mark, the
 * labels that fit, and a trace of hover triangles (on a hidden second y axis, "y2", from 0 to 1).
 */
export function changeMarks(X, range, width) {
  const [x0, x1] = range;
  const px = (x) => ((x - x0) / (x1 - x0)) * width;
  // marks in view, close ones as one (the newest label wins: the value it ended at)
  const marks = [];
  for (const g of changeGroups()) {
    const x = X(g.step);
    if (x < x0 || x > x1) continue;
    const m = marks[marks.length - 1];
    if (m && px(x) - m.px < MARK_PX) {
      m.groups.push(g);
      continue;
    }
    marks.push({ x, px: px(x), groups: [g] });
  }
  // labels: from the newest, those that do not overlap the one after them
  let labelled = 0;
  let next = Infinity;
  for (let i = marks.length - 1; i >= 0; i--) {
    const m = marks[i];
    if (labelled < MAX_LABELS && next - m.px >= LABEL_PX) {
      m.labelled = true;
      labelled++;
      next = m.px;
    }
  }
  const shapes = marks.map((m) => vline(m.x, { color: COLORS.change, width: 1, dash: "dot" }));
  const hover = (m) => {
    const lines = m.groups.slice(-HOVER_LINES).map((g) => g.hover);
    if (m.groups.length > HOVER_LINES) lines.unshift(`… ${m.groups.length - HOVER_LINES} more`);
    return lines.join("<br>");
  };
  const annotations = marks
    .filter((m) => m.labelled)
    .map((m) => ({
      xref: "x",
      yref: "paper",
      x: m.x,
      y: 1,
      xanchor: "left",
      yanchor: "top",
      yshift: -10,
      textangle: -90,
      xshift: 2,
      showarrow: false,
      text: m.groups[m.groups.length - 1].label,
      hovertext: hover(m),
      font: { size: 11, color: COLORS.text },
    }));
  const trace = {
    type: "scatter",
    mode: "markers",
    name: "changes",
    yaxis: "y2",
    x: marks.map((m) => m.x),
    y: marks.map(() => 1),
    text: marks.map(hover),
    hoverinfo: "text",
    cliponaxis: false,
    marker: { symbol: "triangle-down", size: 9, color: COLORS.change },
    showlegend: false,
  };
  return { shapes, annotations, trace };
}

const DIVERGED = "#ff6b7a";
const RESTORED = "#4fd1a5";

/**
 * Where the run diverged and whose weights came back: a solid red line at the diverging step and
 * a dashed green one at the evaluation restored, each with a marker of fixed size at the top
 * (so a divergence of a few steps at the end of a million-step axis is still seen), the detail
 * on hover. Returns {shapes, traces} (the traces on "y2", as the change marks').
 */
export function divergenceMarks(X, range) {
  const [x0, x1] = range;
  const inView = (x) => x >= x0 && x <= x1;
  const shapes = [];
  const diverged = { x: [], text: [] };
  const restored = { x: [], text: [] };
  for (const d of state.divergences) {
    const x = X(d.step);
    if (inView(x)) {
      shapes.push(vline(x, { color: DIVERGED, width: 2 }));
      diverged.x.push(x);
      diverged.text.push(`diverged at step ${fmt.int(d.step)}<br>${wrap(d.detail)}`);
    }
    if (d.restoredFrom !== null && inView(X(d.restoredFrom))) {
      const r = X(d.restoredFrom);
      shapes.push(vline(r, { color: RESTORED, width: 1.5, dash: "dash" }));
      restored.x.push(r);
      restored.text.push(`weights of step ${fmt.int(d.restoredFrom)} restored at step ${fmt.int(d.step)}, when the run diverged`);
    }
  }
  const marker = (name, points, symbol, color) => ({
    type: "scatter",
    mode: "markers",
    name,
    yaxis: "y2",
    x: points.x,
    y: points.x.map(() => 0.94),
    text: points.text,
    hoverinfo: "text",
    cliponaxis: false,
    marker: { symbol, size: 13, color, line: { color: "#0f1420", width: 1 } },
    showlegend: false,
  });
  return {
    shapes,
    traces: [marker("diverged", diverged, "x", DIVERGED), marker("restored", restored, "circle", RESTORED)],
  };
}

/** A long detail in lines of about 60 characters, for a hover box. */
function wrap(text) {
  const out = [];
  let line = "";
  for (const word of String(text).split(" ")) {
    if (line && line.length + word.length > 60) {
      out.push(line);
      line = "";
    }
    line = line ? `${line} ${word}` : word;
  }
  if (line) out.push(line);
  return out.join("<br>");
}
