// The REST API, with errors turned into readable messages.

/** A failed request: `message` is "STATUS: why"; `why` alone for inline messages. */
export class ApiError extends Error {
  constructor(message, status = 0, why = message) {
    super(message);
    this.status = status;
    this.why = why;
  }
}

/** FastAPI's {"detail": ...}: a string, or a list of validation errors {loc, msg}. */
export function describeDetail(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((e) => {
        const loc = (e.loc || []).filter((p) => !["body", "query", "path"].includes(p)).join(".");
        return loc ? `${loc}: ${e.msg}` : e.msg;
      })
      .join("; ");
  }
  return JSON.stringify(detail);
}

async function send(url, init) {
  let response;
  try {
    response = await fetch(url, init);
  } catch (e) {
    throw new ApiError(`cannot reach the server (${e.message})`);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // not JSON: fall through with the status line
  }
  if (!response.ok) {
    const why = data && data.detail !== undefined ? describeDetail(data.detail) : response.statusText;
    throw new ApiError(`${response.status}: ${why}`, response.status, why);
  }
  return data;
}

/** fetch + JSON; throws ApiError with the server's explanation on any failure. */
export function request(method, url, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  return send(url, init);
}

const run = (id) => `/api/runs/${encodeURIComponent(id)}`;

export const createRun = (spec = {}) => request("POST", "/api/runs", spec);

export const getRun = (id) => request("GET", run(id));
export const updateRun = (id, changes) => request("PATCH", run(id), changes);
export const deleteRun = (id) => request("DELETE", run(id));
export const listCheckpoints = (id) => request("GET", `${run(id)}/checkpoints`);
export const branchRun = (id, spec) => request("POST", `${run(id)}/branch`, spec);

/** Names from the run's network as it is now. */
export function sample(id, n, temperature) {
  const q = new URLSearchParams({ n: String(n), temperature: String(temperature) });
  return request("GET", `${run(id)}/sample?${q}`);
}

export const startLrFind = (id, spec) => request("POST", `${run(id)}/lr-find`, spec);
export const lastLrFind = (id) => request("GET", `${run(id)}/lr-find`);
export const nextChars = (id, context) => request("GET", `${run(id)}/next?${new URLSearchParams({ context })}`);
export const evaluateTest = (id) => request("POST", `${run(id)}/evaluate-test`);
export const listDatasets = () => request("GET", "/api/datasets");
export const deleteDataset = (id) => request("DELETE", `/api/datasets/${encodeURIComponent(id)}`);

/** Multipart upload of a word list (field `file`). */
export function uploadDataset(file) {
  const body = new FormData();
  body.append("file", file, file.name);
  return send("/api/datasets", { method: "POST", headers: { Accept: "application/json" }, body });
}
