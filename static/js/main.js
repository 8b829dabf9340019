/* The search page's entry point: binds every feature, picks the language, and starts status and search. */
import { bindDropAndPaste } from "./drop.js";
import { bindErrors, errorsAreOpen, renderErrors } from "./errors.js";
import { bindFilters, renderFilterBadge } from "./filters.js";
import { currentLanguage, initialLanguage, setLanguage } from "./i18n.js";
import { bindPlaces, placesAreOpen, renderPlaces } from "./places.js";
import { bindQuery, focusQuery, renderChip, restoreFromLocation, startLike } from "./query.js";
import { bindResults, renderResults } from "./results.js";
import { bindScan, refreshStatus, renderStatus } from "./scan.js";
import { runSearch } from "./search.js";
import { state } from "./state.js";
import { bindViewer, openViewer, renderViewer, viewerIsOpen } from "./viewer.js";

// Everything drawn in the current language, drawn again (after a language switch).
function renderAll() {
  renderChip();
  renderFilterBadge();
  renderResults(true);
  renderStatus();
  if (viewerIsOpen()) renderViewer();
  if (errorsAreOpen()) renderErrors();
  if (placesAreOpen()) renderPlaces();
}

function switchLanguage(lang, remember) {
  setLanguage(lang, remember);
  renderAll();
}

function bind() {
  bindQuery();
  bindFilters(() => {
    if (state.query) runSearch(false);
  });
  bindResults({ open: openViewer, similar: startLike, loadMore: () => runSearch(true) });
  bindViewer();
  bindErrors();
  bindPlaces();
  bindScan();
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
}

bind();
switchLanguage(initialLanguage(), false);
refreshStatus();
restoreFromLocation();
