// The sweep form: which parameter (the learning rate as a log range min/max/n, or a list of values
// for batch_size, n_hidden...), optionally a second one (a list: a grid, drawn as a heatmap), how
// many steps, and a few base settings -> POST /api/sweeps, then the sweep's own view. Defaults
// and bounds come from the server's schema of a sweep (GET /api/schema's `sweep`: RunSpec, the
// lecture's LrRange, a base of lecture-sized runs); the server validates, and its 422 is shown
// under the form.

import { ApiError, request } from "../api.js";
import { sweepHref } from "./address.js";

const $ = (id) => document.getElementById(id);
const INTEGER = new Set(["batch_size", "n_embd", "n_hidden", "block_size", "seed"]);
// base settings on the form: [field, input id]
const BASE = [
  ["max_steps", "sweep-steps"],
  ["eval_every", "sweep-eval-every"],
  ["lr", "sweep-lr"],
  ["batch_size", "sweep-batch"],
  ["n_hidden", "sweep-n-hidden"],
];

let schema = null; // RunSpec's properties

/** A field's bounds from the schema, on its input (integers say ge/le, numbers minimum/maximum). */
function bound(input, prop) {
  const lo = prop.minimum ?? prop.ge ?? prop.exclusiveMinimum;
  const hi = prop.maximum ?? prop.le ?? prop.exclusiveMaximum;
  if (lo !== undefined) input.min = String(lo);
  if (hi !== undefined) input.max = String(hi);
}

export async function initSweepForm() {
  $("sweep-param").addEventListener("change", showDependent);
  $("sweep-param2").addEventListener("change", showDependent);
  $("sweep-form").addEventListener("submit", (e) => {
    e.preventDefault();
    submit();
  });
  showDependent();
  try {
    const { sweep } = await request("GET", "/api/schema");
    schema = sweep.$defs.RunSpec.properties;
    const range = sweep.$defs.LrRange.properties;
    const base = sweep.properties.base.default || {}; // a sweep's runs are shorter than one run
    for (const [field, id] of BASE) {
      bound($(id), schema[field]);
      if ($(id).value === "") $(id).value = String(base[field] ?? schema[field].default);
    }
    for (const [field, id] of [["min", "sweep-lr-min"], ["max", "sweep-lr-max"], ["n", "sweep-lr-n"]]) {
      bound($(id), range[field]);
      $(id).value = String(range[field].default);
    }
  } catch (e) {
    showError(`cannot read the server's defaults: ${e.message}`);
  }
}

function showDependent() {
  const p = $("sweep-param").value;
  $("sweep-range").hidden = p !== "lr";
  $("sweep-values-row").hidden = p === "lr";
  $("sweep-values2-row").hidden = $("sweep-param2").value === "";
  $("sweep-lr-row").hidden = p === "lr" || $("sweep-param2").value === "lr";
  $("sweep-batch-row").hidden = p === "batch_size" || $("sweep-param2").value === "batch_size";
  $("sweep-n-hidden-row").hidden = p === "n_hidden" || $("sweep-param2").value === "n_hidden";
}

/** "16, 64" -> [16, 64] (numbers where the parameter is one; the server checks the rest). */
function values(param, text) {
  const items = text.split(/[\s,]+/).filter(Boolean);
  if (!items.length) throw new Error(`${param}: give at least one value`);
  if (param === "optimizer" || param === "init") return items;
  return items.map((s) => {
    const v = Number(s);
    if (!Number.isFinite(v)) throw new Error(`${param}: "${s}" is not a number`);
    if (INTEGER.has(param) && !Number.isInteger(v)) throw new Error(`${param}: "${s}" is not a whole number`);
    return v;
  });
}

function number(id, label) {
  const v = Number($(id).value);
  if ($(id).value === "" || !Number.isFinite(v)) throw new Error(`${label}: not a number`);
  return v;
}

/** The request the form describes. */
export function body() {
  const p1 = $("sweep-param").value;
  const p2 = $("sweep-param2").value;
  if (p2 && p2 === p1) throw new Error("the second parameter must differ from the first");
  const base = {};
  for (const [field, id] of BASE) {
    if ($(id).closest("[hidden]")) continue; // swept: not a base setting
    base[field] = number(id, field.replace("_", " "));
  }
  const out = { base };
  const grid = {};
  if (p1 === "lr") {
    out.lr_range = { min: number("sweep-lr-min", "min lr"), max: number("sweep-lr-max", "max lr"), n: number("sweep-lr-n", "rates") };
  } else {
    grid[p1] = values(p1, $("sweep-values").value);
  }
  if (p2) grid[p2] = values(p2, $("sweep-values2").value);
  if (Object.keys(grid).length) out.grid = grid;
  const name = $("sweep-name").value.trim();
  if (name) out.name = name;
  return out;
}

function showError(text) {
  const el = $("sweep-error");
  el.textContent = text;
  el.hidden = !text;
}

async function submit() {
  let spec;
  try {
    spec = body();
  } catch (e) {
    showError(e.message);
    return;
  }
  const button = $("sweep-submit");
  button.disabled = true;
  showError("");
  try {
    const sweep = await request("POST", "/api/sweeps", spec);
    location.href = sweepHref(sweep.id);
  } catch (e) {
    showError(e instanceof ApiError ? e.why : e.message);
    button.disabled = false;
  }
}
