/* The timeline (no query): every item by date in day groups under month headings, loaded as it scrolls, and its scrubber. */
import { resultCard } from "./cards.js";
import { locale, t } from "./i18n.js";
import { state } from "./state.js";

const PLACEHOLDER_ROWS = 1; // rows of grey cards shown where the next page will appear while it loads
const SCROLL_AHEAD = "150%"; // the next page is asked for this far (of a screen) before the end shows
const SCRUBBER_MARGIN_PX = 12; // the scrubber's distance from the screen's top and bottom edges
const SCRUBBER_ROOM_PX = 180; // less room than this beside the timeline: the scrubber waits until it scrolls up
const el = {
  panel: document.getElementById("timeline"),
  groups: document.getElementById("timeline-groups"),
  placeholder: document.getElementById("timeline-placeholder"),
  sentinel: document.getElementById("timeline-end"),
  scrubber: document.getElementById("scrubber"),
};
let loadNext = () => {};
let observer = null;
let dockScrubber = () => {};

const dayOf = (item) => (item.taken_at ? item.taken_at.slice(0, 10) : "");
const monthOf = (item) => dayOf(item).slice(0, 7);

/** `more()` asks for the next page when the end of the timeline comes near. */
export function bindTimeline(more) {
  loadNext = more;
  observer = new IntersectionObserver(
    (entries) => {
      if (entries.some((entry) => entry.isIntersecting) && !state.loading && state.nextCursor) loadNext();
    },
    { rootMargin: `0px 0px ${SCROLL_AHEAD} 0px` },
  );
  observer.observe(el.sentinel);
  // The scrubber shows beside the timeline only, its top never above the timeline's: never over the search box,
  // the filters or the status line ("Scan now") above it.
  const dock = () => {
    const top = Math.max(SCRUBBER_MARGIN_PX, el.panel.getBoundingClientRect().top);
    const room = innerHeight - top - SCRUBBER_MARGIN_PX;
    el.scrubber.classList.toggle("is-away", room < SCRUBBER_ROOM_PX);
    el.scrubber.style.top = `${Math.round(top)}px`;
    el.scrubber.style.maxHeight = `${Math.round(room)}px`;
  };
  window.addEventListener("scroll", dock, { passive: true });
  window.addEventListener("resize", dock);
  new ResizeObserver(dock).observe(document.body); // the filters opening moves the timeline without a scroll
  dockScrubber = dock;
  el.scrubber.addEventListener("click", (event) => {
    const button = event.target.closest("[data-month]");
    if (button) jumpToMonth(button.dataset.month);
  });
}

/** Draw the timeline for state.results (clear: from scratch; fromIndex: append from there). */
export function renderTimeline(clear, fromIndex) {
  const active = !state.query;
  el.panel.hidden = !active;
  el.scrubber.hidden = !active || state.results.length === 0;
  if (!active) return;
  dockScrubber();
  if (clear) el.groups.replaceChildren();
  const start = clear ? 0 : fromIndex;
  if (typeof start === "number") {
    for (let i = start; i < state.results.length; i += 1) dayGrid(state.results[i]).append(resultCard(state.results[i], i));
    renderScrubber();
  }
  el.groups.setAttribute("aria-busy", state.loading ? "true" : "false");
  renderPlaceholder(state.loading && !state.error && (state.appending || state.results.length === 0));
  // A short first page leaves the end in view: the observer only fires on a change, so ask again here.
  if (!state.loading && state.nextCursor && endInView()) requestAnimationFrame(() => loadNext());
}

function endInView() {
  return el.sentinel.getBoundingClientRect().top < window.innerHeight * 2.5;
}

// The grid of the item's day (made, with its month's heading, when it is the first of its day).
function dayGrid(item) {
  const day = dayOf(item) || "none";
  let month = el.groups.lastElementChild;
  const monthKey = monthOf(item) || "none";
  if (!month || month.dataset.month !== monthKey) {
    month = document.createElement("section");
    month.className = "tl-month";
    month.dataset.month = monthKey;
    const heading = document.createElement("h3");
    heading.className = "tl-month-title";
    heading.textContent = monthKey === "none" ? t("no_date") : monthTitle(monthKey);
    month.append(heading);
    el.groups.append(month);
  }
  let group = month.lastElementChild;
  if (!group || group.dataset.day !== day) {
    group = document.createElement("div");
    group.className = "tl-day";
    group.dataset.day = day;
    const heading = document.createElement("h4");
    heading.className = "tl-day-title";
    heading.textContent = day === "none" ? t("no_date") : dayTitle(day);
    const list = document.createElement("ul");
    list.className = "results tl-grid";
    group.append(heading, list);
    month.append(group);
  }
  return group.lastElementChild;
}

function monthTitle(month) {
  const [year, number] = month.split("-").map(Number);
  return new Intl.DateTimeFormat(locale(), { year: "numeric", month: "long" }).format(new Date(year, number - 1, 1));
}

function dayTitle(day) {
  const [year, month, date] = day.split("-").map(Number);
  const options = { weekday: "short", month: "short", day: "numeric", year: "numeric" };
  return new Intl.DateTimeFormat(locale(), options).format(new Date(year, month - 1, date));
}

// One row of grey cards (as many as fit the width) where the next page will be.
function renderPlaceholder(show) {
  el.placeholder.hidden = !show;
  if (!show) return;
  const columns = Math.max(1, Math.floor(el.groups.clientWidth / 160));
  if (el.placeholder.children.length === columns * PLACEHOLDER_ROWS) return;
  el.placeholder.replaceChildren();
  for (let i = 0; i < columns * PLACEHOLDER_ROWS; i += 1) {
    const card = document.createElement("li");
    card.className = "result placeholder";
    card.setAttribute("aria-hidden", "true");
    el.placeholder.append(card);
  }
}

// Every month from the newest item loaded to the oldest known, by year; months without items loaded yet included
// only as far as the timeline has reached (the rest is asked for on a jump).
function renderScrubber() {
  const months = [...new Set(state.results.map(monthOf).filter(Boolean))];
  const years = new Map();
  for (const month of months) {
    const year = month.slice(0, 4);
    if (!years.has(year)) years.set(year, []);
    years.get(year).push(month);
  }
  el.scrubber.replaceChildren();
  for (const [year, list] of years) {
    const yearButton = document.createElement("button");
    yearButton.type = "button";
    yearButton.className = "scrub-year";
    yearButton.dataset.month = list[0];
    yearButton.textContent = year;
    el.scrubber.append(yearButton);
    for (const month of list) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "scrub-month";
      button.dataset.month = month;
      button.textContent = new Intl.DateTimeFormat(locale(), { month: "short" }).format(
        new Date(Number(year), Number(month.slice(5, 7)) - 1, 1),
      );
      button.title = monthTitle(month);
      button.setAttribute("aria-label", monthTitle(month));
      el.scrubber.append(button);
    }
  }
  if (state.nextCursor) {
    const older = document.createElement("button");
    older.type = "button";
    older.className = "scrub-year scrub-older";
    older.dataset.month = "older";
    older.textContent = t("scrub_older");
    el.scrubber.append(older);
  }
}

/** Scroll to the heading of `month` ("YYYY-MM"; "older": past what is loaded), loading pages until it is there. */
async function jumpToMonth(month) {
  const first = state.results.length ? monthOf(state.results[0]) : "";
  const ascending = first !== "" && first < monthOf(state.results[state.results.length - 1]);
  const reached = (key) => (ascending ? key >= month : key <= month);
  const target = () => [...el.groups.querySelectorAll(".tl-month")].find((section) => month !== "older"
    && section.dataset.month !== "none" && reached(section.dataset.month) && !state.query);
  const before = el.groups.querySelectorAll(".tl-month").length;
  while (!target() && state.nextCursor && !state.query) {
    await loadNext();
    if (month === "older" && el.groups.querySelectorAll(".tl-month").length > before) break;
  }
  const section = month === "older" ? el.groups.querySelectorAll(".tl-month")[before] : target();
  if (section) section.scrollIntoView({ block: "start" });
}
