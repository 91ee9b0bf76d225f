// An error about a value typed into a field, said next to the field (not in a toast at the foot
// of the page): a line at the end of the field's control, the field marked invalid and described
// by it. The next good value clears it.

import * as fmt from "./format.js";
import { bounds, rangeProblem } from "./schema.js";

function box(input) {
  return input.closest(".control, .pair") || input.parentElement;
}

/** Say `text` under `input` (its control's last line). */
export function showFieldError(input, text) {
  const id = `${input.id}-error`;
  let p = document.getElementById(id);
  if (!p) {
    p = document.createElement("p");
    p.id = id;
    p.className = "field-error";
    p.setAttribute("role", "alert");
    box(input).append(p);
  }
  if (p.textContent !== text) p.textContent = text;
  p.hidden = false;
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", id);
}

/** Take the error under `input` away, if there is one. */
export function clearFieldError(input) {
  const p = document.getElementById(`${input.id}-error`);
  if (p && !p.hidden) p.hidden = true;
  if (input.hasAttribute("aria-invalid")) input.removeAttribute("aria-invalid");
}

/** A whole number within the setting's bounds (the server's; `upper`: its upper one too), or
 * null after saying why under the input. */
export function readInt(input, label, field, kind = null, upper = true) {
  const { min, max: bound } = bounds(field, kind);
  const max = upper ? bound : undefined;
  const text = input.value.trim();
  const n = Number(text);
  if (text === "" || !Number.isInteger(n) || n < min || (max !== undefined && n > max)) {
    const range = max !== undefined ? `in ${fmt.int(min)}–${fmt.int(max)}` : `of at least ${fmt.int(min)}`;
    showFieldError(input, `${label}: enter a whole number ${range}`);
    return null;
  }
  clearFieldError(input);
  return n;
}

/** The input's number, within the server's bounds for the setting, or null after saying why under it. */
export function numberIn(input, label, field, kind = null) {
  const text = input.value.trim();
  const problem = rangeProblem(field, label, text === "" || input.validity.badInput ? NaN : Number(text), kind);
  if (problem) showFieldError(input, problem);
  else clearFieldError(input);
  return problem ? null : Number(text);
}
