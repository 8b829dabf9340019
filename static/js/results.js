/* The results panel: its title, count, message, "Load more" (or scrolling), and the search's grid of cards. */
import { resultCard } from "./cards.js";
import { describeFilters } from "./filters.js";
import { formatNumber } from "./format.js";
import { t } from "./i18n.js";
import { renderOptions } from "./options.js";
import { indexedCount, state } from "./state.js";

const el = {
  title: document.getElementById("results-heading"),
  count: document.getElementById("results-count"),
  message: document.getElementById("message"),
  messageTitle: document.getElementById("message-title"),
  messageText: document.getElementById("message-text"),
  list: document.getElementById("results"),
  loadMore: document.getElementById("load-more"),
};

// Scrolling to within this many screens of "Load more" asks for the next page; the button stays for keyboards and
// for a page too short to scroll. Only a scroll asks: the first page is never followed by another unasked.
const SCROLL_AHEAD_SCREENS = 1.5;

/** "Load more" (and scrolling near it) calls `loadMore()` (clicks on the cards are bound by cards.js). */
export function bindResults({ loadMore }) {
  el.loadMore.addEventListener("click", () => {
    if (!state.loading) loadMore();
  });
  const nearTheEnd = () => el.loadMore.getBoundingClientRect().top < window.innerHeight * SCROLL_AHEAD_SCREENS;
  window.addEventListener(
    "scroll",
    () => {
      if (!el.loadMore.hidden && !state.loading && state.query && nearTheEnd()) loadMore();
    },
    { passive: true },
  );
}

/** clear: rebuild every card; fromIndex: append the cards from there on; neither: cards stay as they are. */
export function renderResults(clear, fromIndex) {
  el.title.textContent = resultsTitle(state.query);
  document.body.classList.toggle("has-query", Boolean(state.query)); // a phone puts the results first (view.css)
  el.list.hidden = !state.query; // without a query the timeline shows instead
  el.list.setAttribute("aria-busy", state.loading ? "true" : "false");
  el.list.classList.toggle("is-stale", state.loading && !state.appending);
  let start = null;
  if (clear) {
    el.list.replaceChildren();
    start = 0;
  } else if (typeof fromIndex === "number") {
    start = fromIndex;
  }
  if (start !== null && state.query) {
    const fragment = document.createDocumentFragment();
    for (let i = start; i < state.results.length; i += 1) fragment.append(resultCard(state.results[i], i));
    el.list.append(fragment);
  }
  renderMessage();
  renderCount();
  renderLoadMore();
  renderOptions();
}

/** The message in place of results: welcome, nothing indexed, searching, no matches, or the search's error. */
export function renderMessage() {
  const counts = state.status && state.status.counts;
  const scanning = state.status && state.status.scan && state.status.scan.state !== "idle"; // or paused
  if (state.error) {
    showMessage(t("search_failed"), state.error, "error");
  } else if (!state.query && state.results.length === 0 && counts && indexedCount(counts) === 0) {
    showMessage(t("empty_index_title"), scanning ? t("empty_index_scanning") : t("empty_index_text"));
  } else if (!state.query && (state.loading || !counts || state.results.length > 0)) {
    el.message.hidden = true; // the timeline (or its placeholders) shows
  } else if (!state.query) {
    // An empty timeline although items are indexed: filters leave nothing, or it loads again (live.js) — never
    // "No matches, try other words" where nothing was searched.
    if (describeFilters().length) showMessage(t("no_filtered_items"), t("no_filtered_items_text"));
    else el.message.hidden = true;
  } else if (state.loading && state.results.length === 0) {
    showMessage(t("searching"), "", "loading");
  } else if (!state.loading && state.results.length === 0) {
    if (counts && indexedCount(counts) === 0) showMessage(t("empty_index_title"), t("empty_index_text"));
    else showMessage(t("no_results_title"), t("no_results_text"));
  } else {
    el.message.hidden = true;
  }
}

function resultsTitle(query) {
  if (!query) {
    const narrowed = describeFilters(); // a place, tags or other filters narrow the timeline: the title says so
    return narrowed.length ? t("timeline_filtered", { filters: narrowed.join(" · ") }) : t("timeline_title");
  }
  if (query.mode === "name") return t("results_for_name", { name: query.name });
  if (query.mode === "text") return t("results_for_text", { q: query.raw || query.q }); // -words as typed
  if (query.mode === "like") return t("results_similar", { name: query.like.name });
  if (query.mode === "stack") return t("stack_results", { name: query.stack.name });
  return query.q ? t("results_for_image_text", { q: query.q }) : t("results_for_image");
}

function showMessage(title, text, kind) {
  el.message.hidden = false;
  el.message.dataset.kind = kind || "info";
  el.messageTitle.textContent = title;
  el.messageText.textContent = text || "";
  el.messageText.hidden = !text;
}

function renderCount() {
  if (state.results.length === 0 && (state.loading || state.error)) {
    el.count.textContent = "";
    return;
  }
  if (!state.query) {
    el.count.textContent = state.results.length ? t("timeline_count", { n: formatNumber(state.results.length) }) : "";
    return;
  }
  let text = t("results_count", { shown: formatNumber(state.results.length), total: formatNumber(state.total) });
  if (state.tookMs != null) text += ` · ${t("took", { ms: formatNumber(Math.round(state.tookMs)) })}`;
  el.count.textContent = text;
}

function renderLoadMore() {
  const more = Boolean(state.query) && !state.error && state.results.length < state.total;
  el.loadMore.hidden = !more;
  el.loadMore.disabled = state.loading;
  el.loadMore.textContent = state.loading && state.appending ? t("loading_more") : t("load_more");
}
