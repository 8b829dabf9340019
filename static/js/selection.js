/* Selecting results (tick, shift-click, ctrl-click, long-press on a phone), and the bar that downloads or copies them. */
import { CSRF_TOKEN } from "./api.js";
import { formatNumber } from "./format.js";
import { t } from "./i18n.js";
import { resultKey, state } from "./state.js";
import { toast } from "./toast.js";

const LONG_PRESS_MS = 500; // a touch held this long selects instead of opening
const MOVE_TOLERANCE_PX = 10; // a touch that moves further is a scroll, not a press
const el = {
  bar: document.getElementById("selection-bar"),
  count: document.getElementById("selection-count"),
  download: document.getElementById("selection-download"),
  copy: document.getElementById("selection-copy"),
  clear: document.getElementById("selection-clear"),
};
const selected = new Map(); // result key → item
let anchor = -1; // the index a shift-click selects from
let pressed = null; // {timer, x, y, fired} while a touch rests on a card

const selecting = () => selected.size > 0;

/** Whether the result with this key is selected (cards drawn later show their tick). */
export const isSelected = (key) => selected.has(key);

/** A card was ticked, ctrl/shift-clicked (or long-pressed): change the selection. */
export function toggleSelection(index, event) {
  const item = state.results[index];
  if (!item) return;
  if (event && event.shiftKey && anchor >= 0) {
    const [from, to] = anchor < index ? [anchor, index] : [index, anchor];
    for (let i = from; i <= to; i += 1) if (state.results[i]) selected.set(resultKey(state.results[i]), state.results[i]);
  } else if (selected.has(resultKey(item))) selected.delete(resultKey(item));
  else selected.set(resultKey(item), item);
  anchor = index;
  renderSelection();
}

/** True when a click on a card's picture should change the selection instead of opening it. */
export const clickSelects = (event) => selecting() || event.shiftKey || event.ctrlKey || event.metaKey;

export function clearSelection() {
  selected.clear();
  anchor = -1;
  renderSelection();
}

/** Ticks on the cards shown, and the bar. */
export function renderSelection() {
  for (const card of document.querySelectorAll(".result[data-key]")) {
    const on = selected.has(card.dataset.key);
    card.classList.toggle("is-selected", on);
    const check = card.querySelector(".result-check");
    if (check) check.setAttribute("aria-pressed", on ? "true" : "false");
  }
  document.body.classList.toggle("is-selecting", selecting());
  el.bar.hidden = !selecting();
  el.count.textContent = t("selected_count", { n: formatNumber(selected.size) });
}

const selectedIds = () => [...new Set([...selected.values()].map((item) => item.id))];

// The originals of the selection as one zip: a form posted to /api/download, so that the browser saves the
// server's stream itself (its own download with progress; nothing held in the page's memory). The answer is an
// attachment, so the page stays; a refused download answers a page saying why.
function downloadSelection() {
  const ids = selectedIds();
  const form = document.createElement("form");
  form.method = "post";
  form.action = "/api/download";
  form.hidden = true;
  const fields = { ids: ids.join(","), csrf_token: CSRF_TOKEN };
  for (const [name, value] of Object.entries(fields)) {
    if (!value) continue;
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = name;
    input.value = value;
    form.append(input);
  }
  document.body.append(form);
  form.submit();
  form.remove();
  toast(t("download_started", { n: formatNumber(ids.length) }));
}

/** After a refused download the server sends the browser back to /?download=refused: say so, and clean the address. */
export function noticeRefusedDownload() {
  const params = new URLSearchParams(window.location.search);
  if (params.get("download") !== "refused") return;
  params.delete("download");
  const rest = params.toString();
  window.history.replaceState(window.history.state, "", window.location.pathname + (rest ? `?${rest}` : ""));
  toast(t("download_refused"), "error");
}

/** Put `text` on the clipboard (the async API where allowed, else a hidden text field); says whether it worked. */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch (_) {
    const field = document.createElement("textarea");
    field.value = text;
    field.setAttribute("readonly", "");
    field.className = "visually-hidden";
    document.body.append(field);
    field.select();
    const done = document.execCommand("copy");
    field.remove();
    return done;
  }
}

async function copySelection() {
  const paths = [...new Set([...selected.values()].map((item) => item.path))];
  const done = await copyText(paths.join("\n"));
  toast(done ? t("copied_paths", { n: formatNumber(paths.length) }) : t("copy_failed"), done ? "info" : "error");
}

/** The bar's buttons, and long-press on the cards in `containers` (phones have no shift key). */
export function bindSelection(containers) {
  el.download.addEventListener("click", downloadSelection);
  el.copy.addEventListener("click", copySelection);
  el.clear.addEventListener("click", clearSelection);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && selecting() && !document.querySelector("dialog[open]")) clearSelection();
  });
  for (const container of containers) {
    container.addEventListener("pointerdown", (event) => {
      const card = event.pointerType === "touch" && event.target.closest(".result[data-index]");
      if (!card) return;
      const index = Number(card.dataset.index);
      pressed = { x: event.clientX, y: event.clientY, fired: false };
      pressed.timer = setTimeout(() => {
        pressed.fired = true;
        toggleSelection(index, null);
        if (navigator.vibrate) navigator.vibrate(20);
      }, LONG_PRESS_MS);
    });
    const cancel = () => pressed && clearTimeout(pressed.timer);
    container.addEventListener("pointermove", (event) => {
      if (pressed && Math.hypot(event.clientX - pressed.x, event.clientY - pressed.y) > MOVE_TOLERANCE_PX) cancel();
    });
    container.addEventListener("pointerup", cancel);
    container.addEventListener("pointercancel", cancel);
    container.addEventListener("contextmenu", (event) => {
      if (pressed && pressed.fired) event.preventDefault(); // the long-press menu would cover the tick
    });
    // The click that ends a long-press must not also open the card.
    container.addEventListener("click", (event) => {
      if (pressed && pressed.fired) {
        event.stopPropagation();
        event.preventDefault();
      }
      pressed = null;
    }, true);
  }
}
