/* The client for this server's REST API: CSRF header, JSON errors, and the way to the login page on 401. */
import { t } from "./i18n.js";

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

// When login is on, the page carries a CSRF token that state-changing API calls must echo in a header.
const CSRF_TOKEN = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

/** fetch() for this server's API: adds the CSRF header, and sends the browser to the login page when the
 * session has expired (401), coming back to this page afterwards. */
export async function apiFetch(url, options = {}) {
  const method = (options.method || "GET").toUpperCase();
  const headers = new Headers(options.headers || {});
  if (CSRF_TOKEN && method !== "GET" && method !== "HEAD") headers.set("X-CSRF-Token", CSRF_TOKEN);
  const response = await fetch(url, { ...options, headers, credentials: "same-origin" });
  if (response.status === 401) {
    const here = window.location.pathname + window.location.search;
    window.location.assign(`/login?next=${encodeURIComponent(here)}`);
  }
  return response;
}

/** The JSON body of a successful response; otherwise an ApiError with the server's message. */
export async function readJson(response) {
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const message = data && (data.message || data.error);
    throw new ApiError(message || t("http_error", { status: `${response.status} ${response.statusText}`.trim() }),
      response.status);
  }
  if (data === null) throw new ApiError(t("http_error", { status: response.status }), response.status);
  return data;
}

/** apiFetch + readJson; a network failure becomes an ApiError saying the server cannot be reached. */
export async function fetchJson(url, options) {
  let response;
  try {
    response = await apiFetch(url, options);
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError(t("network_error"), 0);
  }
  return readJson(response);
}
