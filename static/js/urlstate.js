/* The address is the page's state: query, filters, sort and cut, the open item and a video's time (Back and reload). */
import { filterState } from "./filters.js";
import { optionState } from "./options.js";
import { appendPersonParams } from "./personfilter.js";
import { state } from "./state.js";

const VIEW_KEYS = ["item", "t"]; // what the viewer adds to a search's address
let view = null; // {id, t}: the item open in the viewer and the video's time (seconds)
let quiet = false; // while restoring from the address: replace the entry, never add one

/** The address parameters of the search shown (without the viewer's). */
function searchAddress() {
  const params = new URLSearchParams();
  const query = state.query;
  if (query && query.mode === "text") params.set("q", query.raw || query.q);
  if (query && query.mode === "like") {
    params.set("like", String(query.like.id));
    if (query.like.t != null) params.set("lt", String(query.like.t));
  }
  if (query && query.mode === "stack") params.set("stack", String(query.stack.id));
  for (const [key, value] of filterState()) params.set(key, value);
  appendPersonParams(params);
  for (const [key, value] of optionState()) params.set(key, value);
  return params;
}

/** Write the state into the address: a new history entry (push) or the current one changed. */
export function saveLocation(push) {
  const params = searchAddress();
  if (view) {
    params.set("item", String(view.id));
    if (view.t != null) params.set("t", String(Math.round(view.t * 10) / 10));
  }
  const search = params.toString();
  const url = `${window.location.pathname}${search ? `?${search}` : ""}`;
  if (url === `${window.location.pathname}${window.location.search}`) return;
  if (push && !quiet) window.history.pushState(null, "", url);
  else window.history.replaceState(null, "", url);
}

/** The viewer says what is open (null: nothing). */
export function setView(next) {
  view = next;
}

/** Run `fn` (which may save the location) without adding history entries: restoring what the address says. */
export function quietly(fn) {
  quiet = true;
  try {
    return fn();
  } finally {
    quiet = false;
  }
}

/** The address's parameters, split into the search's part (as a comparable key) and the viewer's. */
export function readLocation() {
  const params = new URLSearchParams(window.location.search);
  const searchPart = new URLSearchParams(params);
  for (const key of VIEW_KEYS) searchPart.delete(key);
  searchPart.sort();
  const item = parseInt(params.get("item") || "", 10);
  const time = parseFloat(params.get("t") || "");
  return {
    params,
    key: searchPart.toString(),
    item: item > 0 ? item : null,
    t: Number.isFinite(time) && time >= 0 ? time : null,
  };
}

/** The key of the search shown, comparable with readLocation().key. */
export function currentSearchKey() {
  const params = searchAddress();
  params.sort();
  return params.toString();
}
