/* Running the current query: /api/search (pages by offset) or, with no query, the timeline (/api/items by cursor). */
import { fetchJson } from "./api.js";
import { timelineLoaded } from "./live.js";
import { filterParams, filterProblem } from "./filters.js";
import { optionParams } from "./options.js";
import { renderResults } from "./results.js";
import { PAGE_SIZE, resultKey, state } from "./state.js";
import { renderTimeline } from "./timeline.js";
import { renderUnderstood } from "./understood.js";

let controller = null; // aborts the search in flight when a newer one starts
let seq = 0; // only the newest search may write its answer
let shownTimeline = false; // the results shown are the timeline's
let keptTimeline = null; // the timeline as a search replaced it (its pages and scroll), for Back to return to

// What the timeline shown depends on: its filters and order.
const timelineKey = () => `${filterParams(true)}&${optionParams(null)}`;

// A search replaces the timeline: keep it, so that Back shows it again where it was (not from its first page).
function keepTimeline() {
  if (!shownTimeline || !state.results.length) return;
  const { results, nextCursor, total, timelineIndexed } = state;
  keptTimeline = { key: timelineKey(), results, nextCursor, total, timelineIndexed, scrollY: window.scrollY };
}

// Back to the timeline a search replaced: shown again as it was, scrolled where it was; true when it was.
function restoreTimeline() {
  const kept = keptTimeline;
  keptTimeline = null;
  if (!kept || kept.key !== timelineKey()) return false;
  seq += 1;
  Object.assign(state, { results: kept.results, nextCursor: kept.nextCursor, total: kept.total, loading: false,
    timelineIndexed: kept.timelineIndexed, error: null, understood: null, scores: null, viewerIndex: -1 });
  shownTimeline = true;
  render(true);
  // Instant, now and once laid out: it also stops a smooth scroll to the top still running from the search.
  const back = () => window.scrollTo({ top: kept.scrollY, behavior: "instant" });
  back();
  requestAnimationFrame(back);
  return true;
}

/** Search for state.query (the timeline when there is none): a fresh first page, or (append) the next page. */
export async function runSearch(append) {
  const query = state.query;
  if (append && !(query ? state.results.length < state.total : state.nextCursor)) return;
  if (controller) controller.abort();
  if (!append && query) {
    keepTimeline();
    shownTimeline = false; // from now on (not once it answers: Back may come first)
  }
  if (!append && !query && !shownTimeline && restoreTimeline()) return;
  if (filterProblem()) {
    // Checked here, said in the page's words: nothing is sent that the API would refuse.
    seq += 1;
    Object.assign(state, { loading: false, error: filterProblem(), results: [], total: 0, nextCursor: null });
    render(true);
    return;
  }
  const mine = new AbortController();
  controller = mine;
  const current = ++seq;
  state.loading = true;
  state.appending = append;
  state.error = null;
  if (!append) state.moreCount = null;
  render(false);
  try {
    let data;
    if (!query) data = await fetchTimeline(append ? state.nextCursor : null, mine.signal);
    else if (query.mode === "stack") data = await fetchStack(query.stack.id, mine.signal);
    else data = await fetchPage(query, append ? state.results.length : 0, mine.signal);
    if (current !== seq) return;
    if (!query) shownTimeline = true;
    const incoming = data.results || [];
    state.loading = false;
    state.tookMs = data.took_ms == null ? null : data.took_ms;
    state.nextCursor = query ? null : data.next_cursor || null;
    if (append) {
      const known = new Set(state.results.map(resultKey));
      const start = state.results.length;
      state.results = state.results.concat(incoming.filter((item) => !known.has(resultKey(item))));
      state.total = Math.max(data.total || 0, state.results.length);
      render(false, start);
    } else {
      state.results = incoming;
      state.understood = data.understood || null;
      state.scores = query ? data.scores || null : null; // what each result's score means (scores.js)
      state.total = Math.max(data.total || 0, incoming.length);
      state.viewerIndex = -1;
      if (!query) timelineLoaded();
      render(true);
      if (typeof data.more === "number") state.moreCount = data.more; // the server's estimate
      else if (query && query.mode !== "stack") countHidden(query, current);
    }
  } catch (error) {
    if (error && error.name === "AbortError") return;
    if (current !== seq) return;
    state.loading = false;
    state.error = error && error.message ? error.message : String(error);
    if (!append) {
      state.understood = null;
      state.results = [];
      state.total = 0;
      state.tookMs = null;
      state.nextCursor = null;
    }
    render(!append);
  } finally {
    if (current === seq) {
      state.loading = false;
      controller = null;
      render(false);
    }
  }
}

function render(clear, fromIndex) {
  renderUnderstood();
  renderResults(clear, fromIndex);
  renderTimeline(clear, fromIndex);
}

/** The parameters of a search for `query`, besides paging: filters, sort, match, exclusions, name. */
function searchParams(query) {
  const params = filterParams(false);
  for (const word of query.exclude || []) params.append("exclude", word);
  for (const [key, value] of optionParams(query)) params.append(key, value);
  return params;
}

// A picture travels in a POST form; words, names and "similar to" in the address of a GET.
function fetchPage(query, offset, signal, overrides) {
  const params = searchParams(query);
  params.set("limit", String(PAGE_SIZE));
  params.set("offset", String(offset));
  for (const [key, value] of Object.entries(overrides || {})) params.set(key, value);
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
  } else if (query.q) params.set("q", query.q);
  return fetchJson(`/api/search?${params}`, { signal });
}

// A stack: the item and its near-identical ones (one answer, no pages).
const fetchStack = (id, signal) => fetchJson(`/api/items/${id}/stack?${filterParams(true)}`, { signal });

function fetchTimeline(cursor, signal) {
  const params = filterParams(true);
  for (const [key, value] of optionParams(null)) params.set(key, value);
  params.set("limit", String(PAGE_SIZE));
  if (cursor) params.set("cursor", cursor);
  return fetchJson(`/api/items?${params}`, { signal });
}

// With "good matches only", how many more "all" would show: the same search's total under match=all.
async function countHidden(query, current) {
  if (optionParams(query).get("match") !== "good") return;
  try {
    const all = await fetchPage(query, 0, undefined, { match: "all", limit: "1" });
    if (current !== seq) return;
    state.moreCount = Math.max(0, (all.total || 0) - state.total);
    renderResults(false);
  } catch (_) {
    state.moreCount = null; // the count is a hint; the results stand without it
  }
}
