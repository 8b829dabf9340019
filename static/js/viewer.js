/* The large view (#viewer dialog): a result's picture or video, its actions, stepping and swiping, and its address. */
import { clearFaces, showFaces } from "./faceboxes.js";
import { t } from "./i18n.js";
import { formatNumber } from "./format.js";
import { startLike } from "./query.js";
import { runSearch } from "./search.js";
import { copyText } from "./selection.js";
import { isMoment, state } from "./state.js";
import { clearItemText, showItemText } from "./textboxes.js";
import { toast } from "./toast.js";
import { saveLocation, setView } from "./urlstate.js";
import { playVideo, stopVideo, videoTime } from "./videoplay.js";
import { renderDetails } from "./viewerinfo.js";
import { besidePicture, bindPicture, clearPicture, pictureGesture, renderPictureTools, showPicture } from "./viewerpicture.js";
import { renderScore } from "./scores.js";

const SWIPE_PX = 50; // a horizontal drag this long on the picture steps to the next or previous result
const TIME_SAVE_MS = 1000; // how often a playing video's time is written into the address
const el = {
  dialog: document.getElementById("viewer"),
  stage: document.getElementById("viewer-stage"),
  image: document.getElementById("viewer-image"),
  details: document.getElementById("viewer-details"), // the OCR text goes after it
  video: document.getElementById("viewer-video"),
  title: document.getElementById("viewer-title"),
  original: document.getElementById("viewer-original"),
  download: document.getElementById("viewer-download"),
  copy: document.getElementById("viewer-copy"),
  clip: document.getElementById("viewer-clip"),
  live: document.getElementById("viewer-live"),
  note: document.getElementById("viewer-note"),
  similar: document.getElementById("viewer-similar"),
  position: document.getElementById("viewer-position"),
  prev: document.getElementById("viewer-prev"),
  next: document.getElementById("viewer-next"),
  close: document.getElementById("viewer-close"),
};
let pushed = false; // opening the viewer added a history entry: closing goes back over it
let lastTimeSave = 0;
let swipe = null;

const current = () => (state.viewerIndex >= 0 ? state.results[state.viewerIndex] : state.viewerItem);

export function bindViewer() {
  el.close.addEventListener("click", () => closeViewer(false));
  el.prev.addEventListener("click", () => stepViewer(-1));
  el.next.addEventListener("click", () => stepViewer(1));
  el.live.addEventListener("click", playLive);
  el.copy.addEventListener("click", async () => {
    const item = current();
    if (!item) return;
    const done = await copyText(item.path);
    toast(done ? t("copied_path") : t("copy_failed"), done ? "info" : "error");
  });
  el.similar.addEventListener("click", () => {
    const item = current();
    pushed = false; // no going back over the viewer's entry: it would undo the search that follows (a race)
    closeViewer(false);
    if (item) startLike(item);
  });
  el.dialog.addEventListener("close", onViewerClosed);
  el.dialog.addEventListener("click", (event) => {
    // Clicks on the backdrop land on the dialog itself; clicks beside the picture land on the stage.
    if (event.target === el.dialog || besidePicture(event)) closeViewer(false);
  });
  el.dialog.addEventListener("keydown", (event) => {
    if (event.target === el.video) return; // arrows seek the video
    if (event.key === "ArrowLeft") {
      event.preventDefault();
      stepViewer(-1);
    } else if (event.key === "ArrowRight") {
      event.preventDefault();
      stepViewer(1);
    }
  });
  el.stage.addEventListener("pointerdown", (event) => {
    if (event.pointerType !== "mouse") swipe = { x: event.clientX, y: event.clientY };
  });
  el.stage.addEventListener("pointerup", (event) => {
    if (!swipe) return;
    const dx = event.clientX - swipe.x;
    const dy = event.clientY - swipe.y;
    swipe = null;
    if (pictureGesture()) return; // a pinch, or a pan of the zoomed picture
    if (Math.abs(dx) >= SWIPE_PX && Math.abs(dx) > 2 * Math.abs(dy)) stepViewer(dx < 0 ? 1 : -1);
  });
  el.stage.addEventListener("pointercancel", () => {
    swipe = null;
  });
  el.video.addEventListener("timeupdate", () => {
    const now = Date.now();
    if (now - lastTimeSave < TIME_SAVE_MS) return;
    lastTimeSave = now;
    rememberView();
  });
  el.video.addEventListener("pause", rememberView);
  bindPicture();
}

// The address says which item is open and, for a video, where it plays.
function rememberView() {
  const item = current();
  if (!item || !el.dialog.open) return;
  const time = item.kind === "video" ? videoTime(item) : null;
  setView({ id: item.id, t: time == null ? (isMoment(item) ? item.start : null) : time });
  saveLocation(false);
}

/** Open the large view on result `index` (or on `item` itself when it is not among the results); `from`: a
 * video's time to start at; `restored`: the address asked for it. */
export function openViewer(index, item, from, restored) {
  if (index >= 0 && !state.results[index]) return;
  state.viewerIndex = index;
  state.viewerItem = index >= 0 ? null : item;
  renderViewer(from);
  if (!el.dialog.open) {
    el.dialog.showModal();
    const shown = current();
    setView({ id: shown.id, t: isMoment(shown) ? shown.start : from == null ? null : from });
    pushed = !restored; // restored from the address (reload, Forward): closing must not go back a page
    saveLocation(!restored);
  }
  el.close.focus({ preventScroll: true });
}

export const viewerIsOpen = () => el.dialog.open;

export function renderViewer(from) {
  const item = current();
  if (!item) return;
  el.title.textContent = item.name;
  const isVideo = item.kind === "video";
  el.video.hidden = !isVideo;
  el.image.hidden = isVideo;
  el.note.hidden = true;
  el.live.hidden = isVideo || !item.motion_url;
  el.clip.hidden = !isMoment(item);
  if (isMoment(item)) {
    el.clip.href = item.clip_url;
    el.clip.setAttribute("download", "");
  }
  if (isVideo) {
    clearPicture();
    el.image.removeAttribute("src");
    if (from !== "keep") playVideo(item, typeof from === "number" ? from : null);
  } else {
    stopVideo();
    showPicture(item);
  }
  renderPictureTools();
  renderDetails(item);
  renderScore(el.details, item);
  showItemText(item, isVideo ? null : el.image, el.details);
  showFaces(item, isVideo ? null : el.image);
  el.original.href = item.file_url;
  el.original.hidden = isVideo ? !item.playable : item.zoom_url !== item.file_url; // else it would only download
  el.download.href = item.file_url;
  el.download.setAttribute("download", item.name);
  const standalone = state.viewerIndex < 0;
  el.position.hidden = standalone;
  el.position.textContent = t("position", { n: formatNumber(state.viewerIndex + 1), total: formatNumber(state.total) });
  // An item on its own (the address named one the loaded page does not hold): no place among results to step from.
  el.prev.hidden = el.next.hidden = standalone;
  el.prev.disabled = standalone || state.viewerIndex <= 0;
  const lastLoaded = state.viewerIndex >= state.results.length - 1;
  const canLoadMore = (state.query ? state.results.length < state.total : Boolean(state.nextCursor)) && !state.loading;
  el.next.disabled = standalone || (lastLoaded && !canLoadMore);
}

function playLive() {
  const item = current();
  if (!item || !item.motion_url) return;
  el.image.hidden = true;
  el.video.hidden = false;
  el.video.poster = item.view_url;
  el.video.src = item.motion_url;
  el.video.addEventListener(
    "ended",
    () => {
      if (current() !== item) return;
      el.video.hidden = true;
      el.image.hidden = false;
    },
    { once: true },
  );
  el.video.play().catch(() => {}); // autoplay refused: the controls are there to start it
}

async function stepViewer(delta) {
  if (state.viewerIndex < 0) return;
  const target = state.viewerIndex + delta;
  if (target < 0) return;
  if (target >= state.results.length) {
    if (state.loading) return;
    await runSearch(true);
    if (target >= state.results.length) return;
  }
  state.viewerIndex = target;
  renderViewer();
  rememberView();
}

/** Close the large view; `fromHistory`: Back already left its address. */
export function closeViewer(fromHistory) {
  if (fromHistory) pushed = false;
  if (el.dialog.open) el.dialog.close();
}

// Back in the grid, the card that was open has the focus; the address loses the item (going back over the entry
// opening it added, so Back after closing returns to the previous search).
function onViewerClosed() {
  clearItemText();
  clearFaces();
  clearPicture();
  stopVideo();
  setView(null);
  if (pushed) {
    pushed = false;
    window.history.back();
  } else saveLocation(false);
  const card = document.querySelector(`.result[data-index="${state.viewerIndex}"] .result-open`);
  if (card) {
    card.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest" });
  }
}
