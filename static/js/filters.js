/* The filters panel: its values as API parameters, the "n active" badge, and when a change re-runs the search. */
import { t } from "./i18n.js";

const PATH_TYPING_MS = 400; // the path filter applies once typing pauses this long
const el = {
  badge: document.getElementById("filters-active"),
  path: document.getElementById("filter-path"),
  from: document.getElementById("filter-date-from"),
  to: document.getElementById("filter-date-to"),
  kind: document.getElementById("filter-kind"),
  place: document.getElementById("filter-place"),
  minScore: document.getElementById("filter-min-score"),
  reset: document.getElementById("reset-filters"),
};

/** The filters that are set, as /api/search parameters. */
export function filterParams() {
  const params = new URLSearchParams();
  const path = el.path.value.trim();
  if (path) params.set("path", path);
  if (el.from.value) params.set("date_from", el.from.value);
  if (el.to.value) params.set("date_to", el.to.value);
  if (el.kind.value && el.kind.value !== "all") params.set("kind", el.kind.value);
  const place = el.place.value.trim();
  if (place) params.set("place", place);
  const minScore = el.minScore.value.trim();
  if (minScore) params.set("min_score", minScore);
  return params;
}

export function renderFilterBadge() {
  const count = [...filterParams().keys()].length;
  el.badge.hidden = count === 0;
  el.badge.textContent = count ? t("filters_active", { n: count }) : "";
}

/** `changed()` runs after each change (the path once typing pauses, or on Enter), and after "Reset filters". */
export function bindFilters(changed) {
  const apply = () => {
    renderFilterBadge();
    changed();
  };
  const applyOnEnter = (event) => {
    if (event.key !== "Enter") return;
    event.preventDefault();
    clearTimeout(pathTimer);
    apply();
  };
  let pathTimer = null;
  el.path.addEventListener("input", () => {
    clearTimeout(pathTimer);
    pathTimer = setTimeout(apply, PATH_TYPING_MS);
  });
  el.path.addEventListener("keydown", applyOnEnter);
  el.place.addEventListener("keydown", applyOnEnter);
  el.minScore.addEventListener("keydown", applyOnEnter);
  for (const input of [el.from, el.to, el.kind, el.minScore, el.place]) input.addEventListener("change", apply);
  el.reset.addEventListener("click", () => {
    for (const input of [el.path, el.from, el.to, el.minScore, el.place]) input.value = "";
    el.kind.value = "all";
    apply();
  });
}
