/* One result card (<template id="result-card">): thumbnail (no score: the viewer explains it), badges, stack count, selection tick, and clicks. */
import { formatDate, formatNumber, formatSpan } from "./format.js";
import { t } from "./i18n.js";
import { isSelected } from "./selection.js";
import { isMoment, resultKey } from "./state.js";
import { renderCardTags } from "./tags.js";
import { fromTemplate } from "./template.js";
import { addSnippet } from "./textboxes.js";

/** The card of `item`, result number `index` of state.results. */
export function resultCard(item, index) {
  const card = fromTemplate("result-card");
  Object.assign(card.dataset, { id: String(item.id), key: resultKey(item), index: String(index), name: item.name,
    kind: item.kind });
  const open = card.querySelector(".result-open");
  open.setAttribute("aria-label", t("open_item", { name: item.name }));
  const img = card.querySelector(".result-thumb");
  img.alt = item.name;
  img.src = item.thumbnail_url;
  img.addEventListener("error", () => card.classList.add("thumb-broken"), { once: true });
  renderBadge(card.querySelector(".result-badge"), item, open);
  const stack = card.querySelector(".result-stack");
  if (item.stack_size > 1) {
    stack.textContent = t("stack_badge", { n: formatNumber(item.stack_size) });
    stack.title = t("stack_title", { n: formatNumber(item.stack_size) });
    stack.setAttribute("aria-label", stack.title);
  } else stack.remove();
  const check = card.querySelector(".result-check");
  check.setAttribute("aria-label", t("select_item", { name: item.name }));
  check.title = t("select_item", { name: item.name });
  if (isSelected(resultKey(item))) {
    card.classList.add("is-selected");
    check.setAttribute("aria-pressed", "true");
  }

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
    badge.textContent = isMoment(item) ? `${t("video_badge")} ${formatSpan(item.start, item.end)}` : t("video_badge");
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

/** Clicks on the cards inside `container`: `act(kind, index, event)` with kind "open", "similar", "select" or
 * "stack". */
export function bindCards(container, act) {
  container.addEventListener("click", (event) => {
    const card = event.target.closest(".result");
    if (!card) return;
    const index = Number(card.dataset.index);
    if (event.target.closest(".result-similar")) act("similar", index, event);
    else if (event.target.closest(".result-check")) act("select", index, event);
    else if (event.target.closest(".result-stack")) act("stack", index, event);
    else if (event.target.closest(".result-open")) act("open", index, event);
  });
}
