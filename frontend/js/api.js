// The REST API, with errors turned into readable messages.

export class ApiError extends Error {}

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

/** fetch + JSON; throws ApiError with the server's explanation on any failure. */
export async function request(method, url, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
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
    throw new ApiError(`${response.status}: ${why}`);
  }
  return data;
}

export const createRun = (spec = {}) => request("POST", "/api/runs", spec);

export function sample(n, temperature) {
  const q = new URLSearchParams({ n: String(n), temperature: String(temperature) });
  return request("GET", `/api/sample?${q}`);
}
