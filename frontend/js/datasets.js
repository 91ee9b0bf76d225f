// "Your own data": upload a word list (POST /api/datasets), then the New-run form with it chosen.

import { uploadDataset } from "./api.js";
import { refreshDatasets } from "./datalist.js";
import * as fmt from "./format.js";
import { openNewRun } from "./newrun.js";
import { invalidate } from "./render.js";
import { state } from "./state.js";

const $ = (id) => document.getElementById(id);

function setUpload(text, error = false, busy = false) {
  state.upload = { text, error, busy };
  invalidate();
}

/**
 * Upload the chosen file, then open the New-run form with it chosen: the user checks the settings
 * (prefilled with the length its size suggests) and creates the run, or cancels
 * and keeps the upload for later. Nothing starts or stops without that.
 */
async function uploadAndTrain() {
  const file = $("upload-file").files[0];
  if (!file) {
    setUpload("choose a text file first: one word per line", true);
    return;
  }
  setUpload(`uploading ${file.name}…`, false, true);
  let entry;
  try {
    entry = await uploadDataset(file);
  } catch (e) {
    setUpload(`upload failed: ${e.why || e.message}`, true);
    return;
  }
  const what = `${entry.name}: ${fmt.int(entry.words)} words, ${entry.vocab_size - 1} characters`;
  setUpload(`${what}, uploaded. Check the settings and create the run.`);
  await openNewRun({
    dataset: entry.id,
    context: `Train on ${what}, just uploaded.`, // the form's advice says what its size asks for
    then(run) {
      setUpload(run ? `${what}. Run ${run.id} trains on it.` : `${what}, uploaded: choose it under New run… to train on it.`);
    },
  });
}

export function initDatasets() {
  const about = document.createElement("p"); // what the built-in list is (the server says, when it knows)
  about.id = "builtin-about";
  about.className = "muted small";
  about.hidden = true;
  $("upload-status").after(about);
  $("upload-button").addEventListener("click", uploadAndTrain);
  $("upload-file").addEventListener("change", () => {
    const file = $("upload-file").files[0];
    setUpload(file ? `${file.name} (${fmt.compact(file.size)} bytes): press Upload & train` : "");
  });
  refreshDatasets();
}

export function renderUpload() {
  const u = state.upload;
  const status = $("upload-status");
  if (status.textContent !== u.text) status.textContent = u.text;
  status.classList.toggle("error", u.error);
  $("upload-button").disabled = u.busy;
  const text = state.datasets.find((d) => d.builtin)?.about || "";
  const about = $("builtin-about");
  about.hidden = !text;
  if (about.textContent !== `Built-in: ${text}`) about.textContent = `Built-in: ${text}`;
}
