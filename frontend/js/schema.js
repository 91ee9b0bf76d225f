// A run's settings as the server checks them (GET /api/schema: the JSON schemas of the create and
// update bodies): every default, bound and choice the forms show comes from here, none is
// written twice. The answer is asked for once, when this module loads.

import { request } from "./api.js";

let create = null; // the JSON schema of POST /api/runs's body, once it came
let running = null; // how many runs the server trains at once

export const schemaReady = request("GET", "/api/schema").then(
  (s) => {
    create = s.create;
    running = s.max_running ?? null;
    return s;
  },
  () => null, // the forms still work: the server checks every value and says why it refuses one
);

/** How many runs the server trains at once (null until its answer came). */
export function maxRunning() {
  return running;
}

function property(field, kind) {
  if (!create) return {};
  if (!kind) return create.properties[field] || {};
  const name = `${kind[0].toUpperCase()}${kind.slice(1)}Schedule`; // StepSchedule, CosineSchedule
  return (create.$defs?.[name]?.properties || {})[field] || {};
}

/** A setting's bounds: {min, max} (either may be undefined; exclusive bounds as the bound). */
export function bounds(field, kind = null) {
  const p = property(field, kind);
  return { min: p.minimum ?? p.exclusiveMinimum, max: p.maximum ?? p.exclusiveMaximum };
}

/** A setting's default (a schedule's parameter when `kind` is given). */
export function defaultOf(field, kind = null) {
  return property(field, kind).default;
}

/** Every setting's default, as POST /api/runs fills what a body leaves out. */
export function defaults() {
  const out = {};
  for (const [field, p] of Object.entries(create?.properties || {})) {
    if (!["name", "start"].includes(field)) out[field] = p.default;
  }
  return out;
}

/** The values a setting may take (init, optimizer), or the schedule kinds. */
export function choices(field) {
  if (field === "schedule") {
    const union = create?.properties.schedule.anyOf[0];
    if (!union) return [];
    const kindOf = Object.fromEntries(Object.entries(union.discriminator.mapping).map(([kind, ref]) => [ref, kind]));
    return union.oneOf.map((o) => kindOf[o.$ref]); // in the server's order
  }
  return property(field).enum || [];
}

/** Set an input's min and max from a setting's bounds (the browser's own check, and its spinner). */
export function bound(input, field, kind = null) {
  const { min, max } = bounds(field, kind);
  if (min !== undefined) input.min = String(min);
  if (max !== undefined) input.max = String(max);
}

/** Fill a <select> with a setting's choices, each shown as `labels[value]` (or the value). */
export function fillChoices(select, field, labels = {}) {
  const keep = select.value;
  select.replaceChildren(
    ...choices(field).map((value) => {
      const o = document.createElement("option");
      o.value = value;
      o.textContent = labels[value] ?? value;
      return o;
    }),
  );
  if (keep && choices(field).includes(keep)) select.value = keep;
}

// How a choice is shown (its value is the server's).
const LABELS = {
  lecture: "lecture (plain randn)",
  scaled: "scaled (part 3's fixes)",
  sgd: "SGD",
  momentum: "SGD with momentum",
  adam: "Adam",
};

/** Whether a value is within a setting's bounds (true while they are not known: the server checks). */
export function within(field, value, kind = null) {
  const p = property(field, kind);
  if (!Number.isFinite(value)) return false;
  if (p.minimum !== undefined && value < p.minimum) return false;
  if (p.exclusiveMinimum !== undefined && value <= p.exclusiveMinimum) return false;
  if (p.maximum !== undefined && value > p.maximum) return false;
  return !(p.exclusiveMaximum !== undefined && value >= p.exclusiveMaximum);
}

/** A setting's range as a label says it: "1–16" for whole numbers, "(0, 10]" otherwise. */
export function rangeText(field, kind = null) {
  const p = property(field, kind);
  const { min, max } = bounds(field, kind);
  if (min === undefined || max === undefined) return "";
  if (p.type === "integer") return `${min.toLocaleString("en-US")}–${max.toLocaleString("en-US")}`;
  const open = p.exclusiveMinimum !== undefined ? "(" : "[";
  const close = p.exclusiveMaximum !== undefined ? ")" : "]";
  return `${open}${min}, ${max}${close}`;
}

/** Why `value` cannot be a setting's value, in the page's one wording ("learning rate: enter a
 * number in (0, 10]"), with the server's bounds; null when it can (or the bounds are not known). */
export function rangeProblem(field, label, value, kind = null) {
  if (Number.isFinite(value) && within(field, value, kind)) return null;
  const range = rangeText(field, kind);
  const p = property(field, kind);
  const whole = p.type === "integer" ? "a whole number" : "a number";
  if (range) return `${label}: enter ${whole} in ${range}`;
  if (p.exclusiveMinimum !== undefined) return `${label}: enter ${whole} above ${p.exclusiveMinimum}`;
  return p.minimum !== undefined ? `${label}: enter ${whole}, at least ${p.minimum}` : `${label}: enter ${whole}`;
}

/** The page's settings inputs take their bounds, selects their choices, labels their ranges:
 * elements marked data-setting (and data-schedule for a schedule's parameter), data-choices,
 * data-range. */
export async function applySchema(root = document) {
  await schemaReady;
  if (!create) return;
  for (const el of root.querySelectorAll("[data-setting]")) bound(el, el.dataset.setting, el.dataset.schedule);
  for (const el of root.querySelectorAll("[data-choices]")) fillChoices(el, el.dataset.choices, LABELS);
  for (const el of root.querySelectorAll("[data-range]")) el.textContent = rangeText(el.dataset.range);
}
