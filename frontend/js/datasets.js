// Word lists: the list of datasets (GET /api/datasets, for the New-run form), and "your own
// data": upload a file (POST /api/datasets), then train a new run on it (POST /api/runs).

import { createRun, listDatasets, uploadDataset } from "./api.js";
import * as fmt from "./format.js";
import { invalidate } from "./render.js";
import { state } from "./state.js";

const $ = (id) => document.getElementById(id);

export async function refreshDatasets() {
  try {
    state.datasets = await listDatasets();
  } catch (e) {
    console.warn("datasets:", e.message);
  }
  invalidate();
}

function setUpload(text, error = false, busy = false) {
  state.upload = { text, error, busy };
  invalidate();
}

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
  setUpload(`${what}; starting a new run on it…`, false, true);
  refreshDatasets();
  try {
    const run = await createRun({ dataset: entry.id, start: true });
    setUpload(`${what}. Run ${run.id} trains on it.`);
  } catch (e) {
    setUpload(`${what}, but the run failed: ${e.why || e.message}`, true);
  }
}

export function initDatasets() {
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
}
