/* Zero-shot tags: the tag browser, the tag= filter it sets, and tag chips on cards and in the viewer. */
import { fetchJson } from "./api.js";
import { currentLanguage, t } from "./i18n.js";
import { state } from "./state.js";

const RETRY_MS = 5000; // while the server is still computing the tags, ask again this often
const CARD_TAGS = 3; // chips shown on a card (the viewer shows all)
const el = {
  browser: document.getElementById("tag-browser"),
  query: document.getElementById("query"),
  form: document.getElementById("search-form"),
  viewer: document.getElementById("viewer"),
};
const byKey = new Map(); // key → {key, zh, en, count}
const active = new Set(); // the tag= filter
let onChange = () => {};

const tagName = (key) => {
  const tag = byKey.get(key);
  if (!tag) return key;
  return currentLanguage() === "zh" ? tag.zh : tag.en;
};

/** `changed()` runs after the tag filter changed while a query is shown (without one, the tag's name is searched). */
export function bindTags({ changed }) {
  onChange = changed;
  document.addEventListener("click", (event) => {
    const chip = event.target.closest("[data-tag]");
    if (!chip) return;
    event.preventDefault();
    event.stopPropagation();
    if (el.viewer.open && el.viewer.contains(chip)) el.viewer.close();
    toggleTag(chip.dataset.tag, chip.closest("#tag-browser") ? undefined : true);
  });
  loadTags();
}

async function loadTags() {
  try {
    const data = await fetchJson("/api/tags");
    byKey.clear();
    for (const tag of data.tags) byKey.set(tag.key, tag);
    renderTagBrowser();
    if (!data.current) setTimeout(loadTags, RETRY_MS);
  } catch (_) {
    setTimeout(loadTags, RETRY_MS); // the page works without tags; try again later
  }
}

/** Add `key` to the filter (`on`), remove it, or toggle it; then search again. */
function toggleTag(key, on) {
  const want = on === undefined ? !active.has(key) : on;
  if (want) active.add(key);
  else active.delete(key);
  renderTagBrowser();
  onChange(); // a search again, or with no query the timeline, narrowed to the tags
}

/** The tag= parameters of the filter. */
export function appendTagParams(params) {
  for (const key of active) params.append("tag", key);
}

/** The active tags' keys. */
export const tagKeys = () => [...active];

/** The active tags' names, in the page's language (for the title of a narrowed timeline). */
export const activeTagNames = () => [...active].map(tagName);

/** The tag filter the address asks for (a reload, Back, a shared link). */
export function setTags(keys) {
  active.clear();
  for (const key of keys) if (key) active.add(key);
  renderTagBrowser();
}

function chip(key, count) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "tag-chip";
  button.dataset.tag = key;
  button.textContent = tagName(key);
  button.title = t("tag_filter_title", { name: tagName(key) });
  button.setAttribute("aria-pressed", active.has(key) ? "true" : "false");
  if (count != null) {
    const number = document.createElement("span");
    number.className = "tag-count";
    number.textContent = String(count);
    button.append(number);
  }
  return button;
}

/** The tag browser: the tags items carry, most frequent first; the active ones pressed. */
export function renderTagBrowser() {
  const shown = [...byKey.values()].filter((tag) => tag.count > 0 || active.has(tag.key));
  el.browser.hidden = shown.length === 0;
  el.browser.replaceChildren();
  if (!shown.length) return;
  const title = document.createElement("span");
  title.className = "tag-browser-title";
  title.textContent = t("tags");
  el.browser.append(title, ...shown.map((tag) => chip(tag.key, tag.count)));
}

/** A card's tag chips, under its name. */
export function renderCardTags(meta, item) {
  if (!item.tags || !item.tags.length) return;
  const row = document.createElement("p");
  row.className = "result-tags";
  row.append(...item.tags.slice(0, CARD_TAGS).map((key) => chip(key)));
  meta.append(row);
}

/** The viewer's "Tags" row. */
export function renderViewerTags(details, item) {
  if (!item.tags || !item.tags.length) return;
  const dt = document.createElement("dt");
  dt.textContent = t("tags");
  const dd = document.createElement("dd");
  dd.className = "viewer-tags";
  dd.append(...item.tags.map((key) => chip(key)));
  details.append(dt, dd);
}
