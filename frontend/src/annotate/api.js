// JSON calls to the bmadcc API with the session cookie and Django's CSRF header.

/** A response that was not 2xx. `status` 0 means the request never reached the server. */
export class ApiError extends Error {
  constructor(status, body, message) {
    super(message);
    this.status = status;
    this.body = body;
  }

  /** Worth retrying: offline, timeouts, server errors, rate limits. */
  get transient() {
    return this.status === 0 || this.status === 408 || this.status === 429 || this.status >= 500;
  }
}

export function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

/**
 * fetch() a JSON endpoint. Resolves to the parsed body (null for 204); rejects with ApiError.
 * @param {string} url
 * @param {{method?: string, body?: any, signal?: AbortSignal}} [options]
 */
export async function api(url, { method = "GET", body, signal } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      signal,
    });
  } catch (error) {
    throw new ApiError(0, null, `network error: ${error.message}`);
  }
  const data = await readBody(response);
  if (!response.ok) throw new ApiError(response.status, data, describe(response.status, data));
  return data;
}

async function readBody(response) {
  if (response.status === 204) return null;
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text.slice(0, 300) };
  }
}

/** A one-line reason from a DRF error body: detail, per-item errors or field errors. */
export function describe(status, data) {
  if (!data) return `HTTP ${status}`;
  if (typeof data.detail === "string" && !data.errors) return data.detail;
  if (Array.isArray(data.errors)) {
    return data.errors.map((e) => `item ${e.index}: ${e.detail}`).join("; ");
  }
  if (typeof data === "object") {
    return Object.entries(data)
      .map(([field, why]) => `${field}: ${Array.isArray(why) ? why.join(" ") : JSON.stringify(why)}`)
      .join("; ");
  }
  return String(data);
}
