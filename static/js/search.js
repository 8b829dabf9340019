/* Running the current query against /api/search: the first page, the next pages, and starting over. */
import { fetchJson } from "./api.js";
import { filterParams } from "./filters.js";
import { renderResults } from "./results.js";
import { PAGE_SIZE, resultKey, state, updateLocation } from "./state.js";

let controller = null; // aborts the search in flight when a newer one starts
let seq = 0; // only the newest search may write its answer

/** Search for state.query: a fresh first page, or (append) the page after the results shown. */
export async function runSearch(append) {
  const query = state.query;
  if (!query) return;
  if (controller) controller.abort();
  const mine = new AbortController();
  controller = mine;
  const current = ++seq;
  const offset = append ? state.results.length : 0;
  state.loading = true;
  state.appending = append;
  state.error = null;
  renderResults(false);
  updateLocation(query);
  try {
    const data = await fetchPage(query, offset, mine.signal);
    if (current !== seq) return;
    const incoming = data.results || [];
    state.loading = false;
    state.tookMs = data.took_ms;
    if (append) {
      const known = new Set(state.results.map(resultKey));
      const start = state.results.length;
      state.results = state.results.concat(incoming.filter((item) => !known.has(resultKey(item))));
      state.total = Math.max(data.total || 0, state.results.length);
      renderResults(false, start);
    } else {
      state.results = incoming;
      state.total = Math.max(data.total || 0, incoming.length);
      state.viewerIndex = -1;
      renderResults(true);
      window.scrollTo({ top: 0 });
    }
  } catch (error) {
    if (error && error.name === "AbortError") return;
    if (current !== seq) return;
    state.loading = false;
    state.error = error && error.message ? error.message : String(error);
    if (!append) {
      state.results = [];
      state.total = 0;
      state.tookMs = null;
    }
    renderResults(!append);
  } finally {
    if (current === seq) {
      state.loading = false;
      controller = null;
      renderResults(false);
    }
  }
}

// A picture travels in a POST form; words and "similar to" in the address of a GET.
function fetchPage(query, offset, signal) {
  const params = filterParams();
  params.set("limit", String(PAGE_SIZE));
  params.set("offset", String(offset));
  if (query.mode === "image") {
    const form = new FormData();
    form.append("image", query.file, query.file.name || "query-image");
    if (query.q) form.append("q", query.q);
    for (const [key, value] of params) form.append(key, value);
    return fetchJson("/api/search", { method: "POST", body: form, signal });
  }
  if (query.mode === "like") {
    params.set("like", String(query.like.id));
    if (query.like.t != null) params.set("t", String(query.like.t));
  } else params.set("q", query.q);
  return fetchJson(`/api/search?${params}`, { signal });
}

/** No query any more: the search in flight is dropped and the welcome message shows. */
export function resetResults() {
  if (controller) controller.abort();
  seq += 1;
  state.query = null;
  state.results = [];
  state.total = 0;
  state.loading = false;
  state.error = null;
  updateLocation(null);
  renderResults(true);
}
