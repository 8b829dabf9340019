/* The filters panel: its values (checked before sending) as API parameters, the "n active" badge, and re-running. */
import { t } from "./i18n.js";
import { activePersonNames, appendPersonParams, setPersonFilter } from "./personfilter.js";
import { activeTagNames, appendTagParams, setTags, tagKeys } from "./tags.js";

const TYPING_MS = 400; // a typed filter applies once typing pauses this long
const MIN_SCORE = -1; // cosine similarity bounds
const MAX_SCORE = 1;
const el = {
  badge: document.getElementById("filters-active"),
  panel: document.getElementById("filters"),
  folder: document.getElementById("filter-folder"),
  path: document.getElementById("filter-path"),
  name: document.getElementById("filter-name"),
  exclude: document.getElementById("filter-exclude"),
  from: document.getElementById("filter-date-from"),
  to: document.getElementById("filter-date-to"),
  kind: document.getElementById("filter-kind"),
  place: document.getElementById("filter-place"),
  minScore: document.getElementById("filter-min-score"),
  problem: document.getElementById("filter-problem"),
  reset: document.getElementById("reset-filters"),
};
// URL / API parameter → its input (the address and the API use the same names).
const FIELDS = { folder: el.folder, path: el.path, name: el.name, date_from: el.from, date_to: el.to, kind: el.kind,
  min_score: el.minScore };
const TIMELINE_FIELDS = ["folder", "path", "date_from", "date_to", "kind"]; // what narrows a timeline
const WIDE_SCREEN = "(min-width: 700px)"; // the filters panel may open by itself above the results

/** The filters that are set, as API parameters (for the timeline: only those that narrow it). */
export function filterParams(timeline) {
  const params = new URLSearchParams();
  for (const [key, input] of Object.entries(FIELDS)) {
    const value = input.value.trim();
    if (!value || (key === "kind" && value === "all")) continue;
    if (timeline && !TIMELINE_FIELDS.includes(key)) continue;
    params.set(key, value);
  }
  // The folder picker gives a folder's absolute path (ending in "/"): the API's path filter; it wins over the
  // typed path, since both cannot be sent.
  const folder = params.get("folder");
  params.delete("folder");
  if (folder) params.set("path", folder);
  if (!timeline) for (const word of excludedWords(el.exclude.value)) params.append("exclude", word);
  appendTagParams(params);
  appendPersonParams(params); // person= narrows the timeline too
  const place = el.place.value.trim();
  if (place) params.set("place", place);
  return params;
}

/** "cat, -dog  bird" → ["cat", "dog", "bird"]: the words to leave out (a comma or space separates them). */
export function excludedWords(text) {
  return text.split(/[,，\s]+/).map((word) => word.replace(/^-/, "").trim()).filter(Boolean);
}

/** The filters as they appear in the address (the exclusions typed in the panel as one value; the place and
 * the tags picked outside the panel too, so a reload keeps them). */
export function filterState() {
  const params = new URLSearchParams();
  for (const [key, input] of Object.entries(FIELDS)) {
    const value = input.value.trim();
    if (value && !(key === "kind" && value === "all")) params.set(key, value);
  }
  if (el.exclude.value.trim()) params.set("exclude", el.exclude.value.trim());
  if (el.place.value.trim()) params.set("place", el.place.value.trim());
  for (const key of tagKeys()) params.append("tag", key);
  return params;
}

/** Put the values of an address's parameters into the panel (missing ones are cleared). The panel opens on a wide
 * screen only: on a phone it would push every result off the screen (the badge and the title say what is set). */
export function setFilters(params) {
  for (const [key, input] of Object.entries(FIELDS)) input.value = params.get(key) || (key === "kind" ? "all" : "");
  el.exclude.value = params.get("exclude") || "";
  setPersonFilter(params);
  el.place.value = params.get("place") || "";
  setTags(params.getAll("tag"));
  const inPanel = [...filterState().keys()].some((key) => key !== "tag");
  if (inPanel && window.matchMedia(WIDE_SCREEN).matches) el.panel.open = true;
  renderFilterBadge();
  showProblem(null);
}

/** What narrows the timeline, in words (people's names, "United Kingdom", a tag's name, "Videos", a date range, a
 * folder). */
export function describeFilters() {
  const words = [...activePersonNames()];
  const place = el.place.value.trim();
  if (place) words.push(place);
  words.push(...activeTagNames().map((name) => `#${name}`));
  if (el.kind.value !== "all") words.push(t(`kind_${el.kind.value}`));
  if (el.from.value || el.to.value) words.push(`${el.from.value || "…"} – ${el.to.value || "…"}`);
  const folder = el.folder.value || el.path.value.trim();
  if (folder) words.push(folder);
  return words;
}

/** Why the filters cannot be sent (in words for people, never the API's parameter names), or null. */
export function filterProblem() {
  const raw = el.minScore.value.trim();
  const score = Number(raw);
  let problem = null;
  if (raw && (!Number.isFinite(score) || score < MIN_SCORE || score > MAX_SCORE)) {
    problem = t("invalid_min_score", { min: MIN_SCORE, max: MAX_SCORE });
  } else if (el.minScore.validity && el.minScore.validity.badInput) {
    problem = t("invalid_min_score", { min: MIN_SCORE, max: MAX_SCORE });
  } else if (el.from.value && el.to.value && el.from.value > el.to.value) {
    problem = t("invalid_date_range");
  }
  showProblem(problem);
  return problem;
}

function showProblem(problem) {
  el.problem.hidden = !problem;
  el.problem.textContent = problem || "";
}

export function renderFilterBadge() {
  const count = [...filterState().keys()].length; // each tag counts
  el.badge.hidden = count === 0;
  el.badge.textContent = count ? t("filters_active", { n: count }) : "";
}

/** Fill the folder picker with the library's folders (from /api/folders), keeping the chosen one. */
export function setFolderChoices(folders) {
  const chosen = el.folder.value;
  const first = el.folder.options[0];
  el.folder.replaceChildren(first);
  for (const folder of folders) {
    const option = document.createElement("option");
    option.value = folder.prefix;
    option.textContent = `${"\u2003".repeat(folder.depth)}${folder.name} (${folder.count})`;
    option.title = folder.prefix;
    el.folder.append(option);
  }
  if (chosen && ![...el.folder.options].some((option) => option.value === chosen)) {
    const option = document.createElement("option"); // from the address, before the folders arrived
    option.value = chosen;
    option.textContent = chosen;
    el.folder.append(option);
  }
  el.folder.value = chosen;
}

/** `changed()` runs after each change (typed fields once typing pauses, or on Enter), and after "Reset filters". */
export function bindFilters(changed) {
  const apply = () => {
    renderFilterBadge();
    changed();
  };
  let typingTimer = null;
  const typed = [el.path, el.name, el.exclude, el.place];
  for (const input of typed) {
    input.addEventListener("input", () => {
      clearTimeout(typingTimer);
      typingTimer = setTimeout(apply, TYPING_MS);
    });
  }
  for (const input of [...typed, el.minScore]) {
    input.addEventListener("keydown", (event) => {
      if (event.key !== "Enter") return;
      event.preventDefault();
      clearTimeout(typingTimer);
      apply();
    });
  }
  for (const input of [el.folder, el.from, el.to, el.kind, el.minScore, el.place]) input.addEventListener("change", apply);
  el.reset.addEventListener("click", () => {
    for (const input of [el.folder, el.path, el.name, el.exclude, el.from, el.to, el.minScore, el.place]) input.value = "";
    el.kind.value = "all";
    setTags([]); // the tags picked in the tag browser are filters too
    apply();
  });
}
