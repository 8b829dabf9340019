/* The timeline follows the scan (new items shown or offered) and says how many items are hidden from it. */
// When the number of indexed items changes, a timeline seen from its top loads again by itself; one scrolled down
// (or with a selection or the viewer open) offers "n new — show" instead.
import { fetchJson } from "./api.js";
import { formatNumber } from "./format.js";
import { t } from "./i18n.js";
import { indexedCount, state } from "./state.js";

const AT_THE_TOP_PX = 240; // scrolled less than this: the newest items are in view, reloading moves nothing seen
const el = {
  button: document.getElementById("new-items"),
  selectionBar: document.getElementById("selection-bar"),
  viewer: document.getElementById("viewer"),
  hidden: document.getElementById("hidden-link"),
};
let reload = () => {};
let hiddenCount = 0;

/** `again()` loads the timeline afresh (the first page). */
export function bindLive(again) {
  reload = again;
  el.button.addEventListener("click", () => {
    window.scrollTo({ top: 0 });
    reload();
  });
}

/** The timeline just loaded afresh: it shows what was indexed then. */
export function timelineLoaded() {
  state.timelineIndexed = state.status ? indexedCount(state.status.counts || {}) : null;
  renderNewItems();
}

/** A status poll answered: load the timeline again, or offer to, when the indexed items changed since it loaded. */
export function followIndex() {
  if (state.query || state.loading || state.error || !state.status) return renderNewItems();
  const now = indexedCount(state.status.counts || {});
  if (state.timelineIndexed == null && state.results.length) state.timelineIndexed = now;
  if (now === state.timelineIndexed) return renderNewItems();
  const busy = el.viewer.open || !el.selectionBar.hidden;
  if (!state.results.length || (window.scrollY < AT_THE_TOP_PX && !busy)) reload();
  else renderNewItems();
}

function renderNewItems() {
  const now = state.status ? indexedCount(state.status.counts || {}) : null;
  const added = now != null && state.timelineIndexed != null ? now - state.timelineIndexed : 0;
  el.button.hidden = Boolean(state.query) || added <= 0;
  el.button.textContent = added > 0 ? t("new_items", { n: formatNumber(added) }) : "";
  el.button.title = t("new_items_title");
}

/** Items hidden from results (on the duplicates page) leave the timeline and searches without a word: say how
 * many, linking to where they can be shown again. */
export async function showHiddenCount() {
  try {
    const body = await fetchJson("/api/hidden");
    hiddenCount = body.total || 0;
  } catch (_) {
    hiddenCount = 0; // a hint: the page works without it
  }
  renderHidden();
}

export function renderHidden() {
  el.hidden.hidden = hiddenCount === 0;
  el.hidden.textContent = hiddenCount ? t("hidden_items", { n: formatNumber(hiddenCount) }) : "";
  el.hidden.title = t("hidden_items_title");
}
