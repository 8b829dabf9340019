/* How results are ordered and cut: the sort control, "good matches only" (the default) and how many more "all" shows. */
import { formatNumber } from "./format.js";
import { t } from "./i18n.js";
import { state } from "./state.js";

const SORTS = ["score", "date_desc", "date_asc"];
const el = {
  sort: document.getElementById("sort"),
  note: document.getElementById("match-note"),
  toggle: document.getElementById("match-toggle"),
};
let match = "good"; // "good" | "all"
let dateByDefault = false; // the timeline shows "Newest first" in place of "Best match": a search goes back to it

const chosenSort = (query) => (dateByDefault && query ? "score" : el.sort.value);

/** The API parameters for ordering (timeline: query null, a date order only) and, for a search, the cut. */
export function optionParams(query) {
  const params = new URLSearchParams();
  const sort = chosenSort(query);
  if (!query) params.set("sort", sort === "date_asc" ? "date_asc" : "date_desc");
  else {
    if (sort !== "score") params.set("sort", sort);
    params.set("match", match);
  }
  return params;
}

/** The options as they appear in the address: only what differs from the defaults. */
export function optionState() {
  const params = new URLSearchParams();
  const sort = chosenSort(state.query);
  if (sort !== "score" && !(dateByDefault && !state.query)) params.set("sort", sort);
  if (match !== "good") params.set("match", match);
  return params;
}

export function setOptions(params) {
  const sort = params.get("sort");
  el.sort.value = SORTS.includes(sort) ? sort : "score";
  dateByDefault = false;
  match = params.get("match") === "all" ? "all" : "good";
}

/** The sort control says which orders fit (no score order without a query), and the note under it what "good
 * matches only" left out. */
export function renderOptions() {
  el.sort.querySelector('option[value="score"]').disabled = !state.query;
  if (!state.query && el.sort.value === "score") {
    el.sort.value = "date_desc";
    dateByDefault = true;
  } else if (state.query && dateByDefault) {
    el.sort.value = "score";
    dateByDefault = false;
  }
  const show = Boolean(state.query) && state.query.mode !== "stack" && !state.error && !state.loading;
  const hidden = state.moreCount;
  el.note.hidden = !show || (match === "good" && !hidden);
  el.toggle.hidden = el.note.hidden;
  if (el.note.hidden) return;
  if (match === "good") {
    el.note.textContent = t("match_good_more", { n: formatNumber(hidden) });
    el.toggle.textContent = t("match_show_all");
  } else {
    el.note.textContent = t("match_showing_all");
    el.toggle.textContent = t("match_good_only");
  }
}

/** `changed()` runs when the order or the cut changes. */
export function bindOptions(changed) {
  el.sort.addEventListener("change", () => {
    dateByDefault = false;
    changed();
  });
  el.toggle.addEventListener("click", () => {
    match = match === "good" ? "all" : "good";
    changed();
  });
}
