// The Inside panel in words: the grad:data table of the newest point and a one-line summary of
// each figure (each chart's aria-describedby), for a screen reader and for a glance.

import * as fmt from "../format.js";
import { GUIDE } from "./steps.js";
import { inside, PARAMS } from "./store.js";

const $ = (id) => document.getElementById(id);
const num = (v, digits = 3) => (v === null || v === undefined || !Number.isFinite(v) ? "—" : Number(v).toPrecision(digits));
const log = (v) => (Number.isFinite(v) ? v.toFixed(2) : "—");

/** The table: per parameter its std, its gradient's std, grad:data and update:data (log10). */
export function renderTable() {
  const body = $("inside-table-body");
  const p = inside.point;
  const rows = PARAMS.map((k) => {
    const s = p?.params?.[k] || {};
    const off = Number.isFinite(s.update_data) && Math.abs(s.update_data - GUIDE) > 1;
    // a stored point has grad:data and std, not the gradient's std: their product is it
    const gStd = s.grad_std ?? (Number.isFinite(s.grad_data) && Number.isFinite(s.std) ? s.grad_data * s.std : null);
    return [k, num(s.std), num(gStd), num(s.grad_data), log(s.update_data), off];
  });
  const key = JSON.stringify([p?.step, rows]);
  if (body.dataset.key === key) return;
  body.dataset.key = key;
  body.replaceChildren(
    ...rows.map(([name, ...cells]) => {
      const tr = document.createElement("tr");
      tr.dataset.param = name;
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = name;
      tr.append(th);
      const off = cells.pop();
      cells.forEach((text, i) => {
        const td = document.createElement("td");
        td.textContent = text;
        if (i === 3 && off) td.className = "off-guide";
        tr.append(td);
      });
      return tr;
    }),
  );
  $("inside-table-step").textContent = p ? `at step ${fmt.int(p.step)}` : "no diagnostics yet";
}

function setText(id, text) {
  const el = $(id);
  if (el && el.textContent !== text) el.textContent = text;
}

/** One line per figure, from what it shows. */
export function renderSummaries() {
  const p = inside.point;
  if (!p) {
    for (const id of ["inside-ud-summary", "inside-sat-summary", "inside-tanh-summary", "inside-grad-summary"]) setText(id, "no diagnostics yet");
  } else {
    const ud = PARAMS.map((k) => `${k} ${log(p.params?.[k]?.update_data)}`).join(", ");
    setText("inside-ud-summary", `log10 update:data at step ${fmt.int(p.step)}: ${ud} (guide ${GUIDE}); ${inside.steps.length} points`);
    const h = p.hidden || {};
    setText("inside-sat-summary", `at step ${fmt.int(p.step)}: ${Number.isFinite(h.saturated) ? (100 * h.saturated).toFixed(1) : "—"}% of tanh outputs saturated (|h| > 0.97), ${h.dead ?? "—"} dead units of ${h.units ?? "—"}`);
    const l = inside.latest;
    const t = l?.hidden?.tanh;
    setText("inside-tanh-summary", t ? `tanh outputs at step ${fmt.int(l.step)}: mean ${num(t.mean)}, std ${num(t.std)}${inside.previous ? `, step ${fmt.int(inside.previous.step)} faint behind` : ""}` : "no histogram yet");
    setText("inside-grad-summary", l ? `log10 |gradient| at step ${fmt.int(l.step)}: ${PARAMS.map((k) => `${k} grad:data ${num(l.params?.[k]?.grad_data, 2)}`).join(", ")}` : "no histogram yet");
  }
  const g = inside.gradcos;
  if (!g) {
    setText("inside-gradcos-summary", "no gradient-direction measurement yet");
  } else {
    const pairs = g.batch_sizes.map((b, i) => `${fmt.int(b)}: ${num(g.mean[i], 2)}`).join(", ");
    setText("inside-gradcos-summary", `step ${fmt.int(g.step)}, cosine to the full gradient by batch size: ${pairs}; B_noise ≈ ${Number.isFinite(g.b_noise) ? fmt.approx(g.b_noise) : "—"}, the run's batch ${fmt.int(g.current)}`);
  }
}
