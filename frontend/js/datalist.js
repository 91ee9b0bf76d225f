// The word lists the server has (GET /api/datasets), in state.datasets: what the New-run form
// offers (newrun.js) and what an upload adds to (datasets.js). Its own module: the upload opens
// the form and the form asks for the list again, so neither may import the other for it.

import { listDatasets } from "./api.js";
import { invalidate } from "./render.js";
import { state } from "./state.js";

export async function refreshDatasets() {
  try {
    state.datasets = await listDatasets();
  } catch (e) {
    console.warn("datasets:", e.message);
  }
  invalidate();
}
