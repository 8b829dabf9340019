/* The client for this server's REST API: CSRF header, JSON errors, and the way to the login page on 401. */
import { t, tCode } from "./i18n.js";

// When login is on, the page carries a CSRF token that state-changing API calls must echo in a header.
export const CSRF_TOKEN = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

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

/** The JSON body of a successful response; otherwise an Error saying why in the page's language (from the error's
 * stable code; the server's own message for a code this page does not know). */
export async function readJson(response) {
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const message = data && tCode(data.code, data.message || data.error);
    throw new Error(message || t("http_error", { status: `${response.status} ${response.statusText}`.trim() }));
  }
  if (data === null) throw new Error(t("http_error", { status: response.status }));
  return data;
}

/** apiFetch + readJson; a network failure becomes an Error saying the server cannot be reached. */
export async function fetchJson(url, options) {
  let response;
  try {
    response = await apiFetch(url, options);
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new Error(t("network_error"));
  }
  return readJson(response);
}
