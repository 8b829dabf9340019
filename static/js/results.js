/* The results panel: its title, count, message, "Load more", and the grid of cards (<template id="result-card">). */
import { formatClock, formatDate, formatNumber, formatScore } from "./format.js";
import { t } from "./i18n.js";
import { indexedCount, isMoment, resultKey, state } from "./state.js";
import { renderCardTags } from "./tags.js";
import { fromTemplate } from "./template.js";
import { addSnippet } from "./textboxes.js";

const el = {
  title: document.getElementById("results-heading"),
  count: document.getElementById("results-count"),
  message: document.getElementById("message"),
  messageTitle: document.getElementById("message-title"),
  messageText: document.getElementById("message-text"),
  list: document.getElementById("results"),
  loadMore: document.getElementById("load-more"),
};

/** Clicks on a card open it (`open(index)`) or look for similar ones (`similar(item)`); "Load more" calls
 * `loadMore()`. */
export function bindResults({ open, similar, loadMore }) {
  el.list.addEventListener("click", (event) => {
    const card = event.target.closest(".result");
    const item = card && state.results[Number(card.dataset.index)];
    if (!item) return;
    if (event.target.closest(".result-similar")) similar(item);
    else if (event.target.closest(".result-open")) open(Number(card.dataset.index));
  });
  el.loadMore.addEventListener("click", () => {
    if (!state.loading) loadMore();
  });
}

/** clear: rebuild every card; fromIndex: append the cards from there on; neither: cards stay as they are. */
export function renderResults(clear, fromIndex) {
  el.title.textContent = resultsTitle(state.query);
  el.list.setAttribute("aria-busy", state.loading ? "true" : "false");
  el.list.classList.toggle("is-stale", state.loading && !state.appending);
  let start = null;
  if (clear) {
    el.list.replaceChildren();
    start = 0;
  } else if (typeof fromIndex === "number") {
    start = fromIndex;
  }
  if (start !== null) {
    const fragment = document.createDocumentFragment();
    for (let i = start; i < state.results.length; i += 1) fragment.append(resultCard(state.results[i], i));
    el.list.append(fragment);
  }
  renderMessage();
  renderCount();
  renderLoadMore();
}

/** The message in place of results: welcome, nothing indexed, searching, no matches, or the search's error. */
export function renderMessage() {
  const counts = state.status && state.status.counts;
  const scanning = state.status && state.status.scan && state.status.scan.state !== "idle"; // or paused
  if (state.error) {
    showMessage(t("search_failed"), state.error, "error");
  } else if (!state.query) {
    if (counts && indexedCount(counts) === 0 && !scanning) showMessage(t("empty_index_title"), t("empty_index_text"));
    else showMessage(t("welcome_title"), t("welcome_text"), "welcome");
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
  if (!query) return "";
  if (query.mode === "text") return t("results_for_text", { q: query.q });
  if (query.mode === "like") return t("results_similar", { name: query.like.name });
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
  if (!state.query || (state.results.length === 0 && (state.loading || state.error))) {
    el.count.textContent = "";
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

function resultCard(item, index) {
  const card = fromTemplate("result-card");
  Object.assign(card.dataset, { id: String(item.id), key: resultKey(item), index: String(index), name: item.name,
    kind: item.kind });
  const open = card.querySelector(".result-open");
  open.setAttribute("aria-label", t("open_item", { name: item.name }));
  const img = card.querySelector(".result-thumb");
  img.alt = item.name;
  img.src = item.thumbnail_url;
  img.addEventListener("error", () => card.classList.add("thumb-broken"), { once: true });
  const score = card.querySelector(".result-score");
  score.title = t("score_title");
  score.textContent = formatScore(item.score);
  renderBadge(card.querySelector(".result-badge"), item, open);

  const name = card.querySelector(".result-name");
  name.title = item.path;
  name.textContent = item.name;
  const date = card.querySelector(".result-date");
  if (item.taken_at) date.dateTime = item.taken_at;
  date.textContent = formatDate(item.taken_at, false);
  const similar = card.querySelector(".result-similar");
  similar.textContent = t("similar");
  similar.title = t("similar_title", { name: item.name });
  similar.setAttribute("aria-label", t("similar_title", { name: item.name }));
  renderCardTags(card.querySelector(".result-meta"), item);
  addSnippet(card, item);
  return card;
}

// Videos say so (and where they matched); Live and motion photos say so and play while the pointer rests on them.
function renderBadge(badge, item, open) {
  if (item.kind === "video") {
    badge.textContent = isMoment(item)
      ? `${t("video_badge")} ${formatClock(item.start)}–${formatClock(item.end)}`
      : t("video_badge");
    badge.classList.toggle("result-moment", isMoment(item));
  } else if (item.motion_url) {
    badge.classList.add("result-live");
    badge.textContent = item.live ? t("live_badge") : t("motion_badge");
    playMotionOnHover(open, item.motion_url);
  } else {
    badge.remove();
  }
}

// Like Photos.app: the motion plays while the pointer rests on the picture.
function playMotionOnHover(open, url) {
  let motion = null;
  open.addEventListener("mouseenter", () => {
    if (motion) return;
    motion = document.createElement("video");
    motion.className = "result-motion";
    motion.muted = true;
    motion.loop = true;
    motion.playsInline = true;
    motion.autoplay = true;
    motion.src = url;
    open.append(motion);
  });
  open.addEventListener("mouseleave", () => {
    if (!motion) return;
    motion.pause();
    motion.remove();
    motion = null;
  });
}
