/* The search page's entry point: binds every feature, picks the language, restores the address, and starts. */
import { fetchJson } from "./api.js";
import { bindCards } from "./cards.js";
import { bindDropAndPaste } from "./drop.js";
import { bindErrors, errorsAreOpen, renderErrors } from "./errors.js";
import { bindFilters, renderFilterBadge } from "./filters.js";
import { loadFolders } from "./folders.js";
import { registerServiceWorker } from "./install.js";
import { bindLive, followIndex, renderHidden, showHiddenCount } from "./live.js";
import { currentLanguage, initialLanguage, setLanguage, t } from "./i18n.js";
import { bindOptions, renderOptions } from "./options.js";
import { bindPersonFilter, renderPersonFilter } from "./personfilter.js";
import { bindPlaces, placesAreOpen, renderPlaces } from "./places.js";
import { bindQuery, currentQuery, focusQuery, openStack, renderChip, restoreQuery, searchFor, startLike } from "./query.js";
import { bindResults, renderResults } from "./results.js";
import { bindScan, refreshStatus, renderStatus } from "./scan.js";
import { runSearch } from "./search.js";
import { takeSharedPicture } from "./share.js";
import { bindSelection, clickSelects, clearSelection, noticeRefusedDownload, renderSelection, toggleSelection } from "./selection.js";
import { state } from "./state.js";
import { bindTags, renderTagBrowser } from "./tags.js";
import { bindTimeline, renderTimeline } from "./timeline.js";
import { toast } from "./toast.js";
import { bindUnderstood, renderUnderstood } from "./understood.js";
import { currentSearchKey, readLocation, saveLocation } from "./urlstate.js";
import { bindViewer, closeViewer, openViewer, renderViewer, viewerIsOpen } from "./viewer.js";

// Everything drawn in the current language, drawn again (after a language switch).
function renderAll() {
  renderChip();
  renderUnderstood();
  renderPersonFilter();
  renderFilterBadge();
  renderResults(true);
  renderTimeline(true);
  renderOptions();
  renderSelection();
  renderStatus();
  renderTagBrowser();
  renderHidden();
  if (viewerIsOpen()) renderViewer("keep");
  if (errorsAreOpen()) renderErrors();
  if (placesAreOpen()) renderPlaces();
}

function switchLanguage(lang, remember) {
  setLanguage(lang, remember);
  renderAll();
}

// Filters, sort or cut changed: the same query again (the timeline too), the address replaced.
function narrowed() {
  clearSelection();
  renderFilterBadge(); // a tag or a place picked outside the panel counts too
  state.query = currentQuery();
  runSearch(false);
  saveLocation(false);
}

function actOnCard(kind, index, event) {
  const item = state.results[index];
  if (!item) return;
  if (kind === "similar") startLike(item);
  else if (kind === "stack") openStack(item);
  else if (kind === "select" || (kind === "open" && clickSelects(event))) toggleSelection(index, event);
  else openViewer(index);
}

function bind() {
  bindQuery();
  bindUnderstood(searchFor);
  bindFilters(narrowed);
  bindPersonFilter(narrowed, () => renderResults(false)); // the title names the people once known
  bindOptions(narrowed);
  bindResults({ loadMore: () => runSearch(true) });
  bindTimeline(() => runSearch(true));
  const lists = [document.getElementById("results"), document.getElementById("timeline-groups")];
  for (const list of lists) bindCards(list, actOnCard);
  bindSelection(lists);
  bindViewer();
  bindTags({ changed: narrowed });
  bindErrors();
  bindPlaces();
  bindScan(followIndex);
  bindLive(() => runSearch(false));
  bindDropAndPaste();
  document.getElementById("lang-toggle").addEventListener("click", () => {
    switchLanguage(currentLanguage() === "zh" ? "en" : "zh", true);
  });
  document.addEventListener("keydown", (event) => {
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName) || event.target.isContentEditable;
    if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      focusQuery();
    }
  });
  window.addEventListener("popstate", restoreFromLocation);
}

// The item the address names: among the results (for a video, the moment holding its time), else on its own.
async function openFromLocation(id, time) {
  const fits = (item) => item.id === id && (time == null || item.start == null || (item.start <= time + 0.05
    && time <= item.end + 0.05));
  const index = state.results.findIndex(fits);
  if (index >= 0) {
    openViewer(index, null, time, true);
    return;
  }
  try {
    openViewer(-1, await fetchJson(`/api/items/${id}`), time, true);
  } catch (error) {
    // The item is gone (or never was): say so, and drop it from the address; the search shows without it.
    toast(t("item_missing", { id }), "error");
    saveLocation(false);
  }
}

/** Show what the address says: the search (run again only when it differs), then the open item, if any. */
async function restoreFromLocation() {
  const asked = readLocation();
  if (!asked.item && viewerIsOpen()) closeViewer(true);
  if (asked.key !== currentSearchKey() || (!state.results.length && !state.loading)) {
    if (viewerIsOpen()) closeViewer(true);
    clearSelection();
    await restoreQuery(asked.params);
  }
  if (asked.item && !viewerIsOpen()) await openFromLocation(asked.item, asked.t);
}

bind();
registerServiceWorker();
switchLanguage(initialLanguage(), false);
noticeRefusedDownload();
refreshStatus();
loadFolders();
showHiddenCount();
takeSharedPicture().then((shared) => shared || restoreFromLocation());
