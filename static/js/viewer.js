/* The large view (#viewer dialog): a result's picture or video, its details, and stepping through the results. */
import { apiFetch } from "./api.js";
import { formatBytes, formatClock, formatDate, formatNumber, formatScore } from "./format.js";
import { t } from "./i18n.js";
import { placeLabel } from "./places.js";
import { startLike } from "./query.js";
import { runSearch } from "./search.js";
import { isMoment, state } from "./state.js";

const RENDITION_POLL_MS = 2000; // how often to ask whether the server's playable version of a video is ready
const el = {
  dialog: document.getElementById("viewer"),
  image: document.getElementById("viewer-image"),
  video: document.getElementById("viewer-video"),
  title: document.getElementById("viewer-title"),
  details: document.getElementById("viewer-details"),
  original: document.getElementById("viewer-original"),
  clip: document.getElementById("viewer-clip"),
  live: document.getElementById("viewer-live"),
  note: document.getElementById("viewer-note"),
  similar: document.getElementById("viewer-similar"),
  position: document.getElementById("viewer-position"),
  prev: document.getElementById("viewer-prev"),
  next: document.getElementById("viewer-next"),
  close: document.getElementById("viewer-close"),
};
let token = 0; // bumped whenever the view changes, so a stale wait for a video rendition stops

export function bindViewer() {
  el.close.addEventListener("click", closeViewer);
  el.prev.addEventListener("click", () => stepViewer(-1));
  el.next.addEventListener("click", () => stepViewer(1));
  el.live.addEventListener("click", playLive);
  el.similar.addEventListener("click", () => {
    const item = state.results[state.viewerIndex];
    closeViewer();
    if (item) startLike(item);
  });
  el.dialog.addEventListener("close", onViewerClosed);
  el.dialog.addEventListener("click", (event) => {
    // Clicks on the backdrop land on the dialog itself; clicks beside the picture land on the stage.
    if (event.target === el.dialog || event.target.classList.contains("viewer-stage")) closeViewer();
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
  el.image.addEventListener("load", () => el.image.classList.remove("is-loading"));
  el.image.addEventListener("error", () => el.image.classList.remove("is-loading"));
}

/** Open the large view on result `index`. */
export function openViewer(index) {
  if (!state.results[index]) return;
  state.viewerIndex = index;
  renderViewer();
  if (!el.dialog.open) el.dialog.showModal();
  el.close.focus({ preventScroll: true });
}

export const viewerIsOpen = () => el.dialog.open;

export function renderViewer() {
  const item = state.results[state.viewerIndex];
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
  token += 1;
  if (isVideo) {
    el.image.removeAttribute("src");
    el.video.poster = item.thumbnail_url;
    playVideo(item, token);
  } else {
    el.video.pause();
    el.video.removeAttribute("src");
    el.image.classList.add("is-loading");
    el.image.alt = item.name;
    el.image.src = item.view_url;
  }
  renderDetails(item);
  el.original.href = item.file_url;
  el.position.textContent = t("position", { n: formatNumber(state.viewerIndex + 1), total: formatNumber(state.total) });
  el.prev.disabled = state.viewerIndex <= 0;
  const lastLoaded = state.viewerIndex >= state.results.length - 1;
  const canLoadMore = state.results.length < state.total && !state.loading;
  el.next.disabled = state.viewerIndex >= state.total - 1 || (lastLoaded && !canLoadMore);
}

function renderDetails(item) {
  el.details.replaceChildren();
  const row = (label, value) => {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = value;
    el.details.append(dt, dd);
    return dd;
  };
  const isVideo = item.kind === "video";
  row(t("detail_path"), item.path).className = "detail-path";
  row(t("detail_date"), formatDate(item.taken_at, true));
  row(t("detail_size"), formatBytes(item.size));
  if (item.location) row(t("detail_place"), placeLabel(item));
  if (item.width && item.height) row(t("detail_dimensions"), `${item.width} × ${item.height}`);
  row(t("detail_score"), formatScore(item.score));
  if (isVideo) row(t("detail_kind"), t("kind_video"));
  if (isVideo && typeof item.duration === "number") row(t("detail_duration"), formatClock(item.duration));
  if (isMoment(item)) row(t("detail_moment"), `${formatClock(item.start)}–${formatClock(item.end)}`);
}

// Play a video result in place from its moment. Browsers play H.264/VP9 originals directly; for others (HEVC,
// AVI…) the server makes an H.264 rendition on demand (202 until ready) and the moment's clip plays meanwhile.
async function playVideo(item, mine) {
  const video = el.video;
  const from = isMoment(item) ? item.start : 0;
  const startAt = (offset) => {
    video.addEventListener(
      "loadedmetadata",
      () => {
        if (offset > 0) video.currentTime = offset;
      },
      { once: true },
    );
  };
  if (item.playable) {
    startAt(from);
    video.src = item.play_url;
    return;
  }
  if (isMoment(item)) {
    startAt(0);
    video.src = item.clip_url;
  }
  for (;;) {
    let response;
    try {
      response = await apiFetch(item.play_url, { method: "HEAD" });
    } catch (_) {
      return; // the server is gone: the clip (if any) keeps playing
    }
    if (mine !== token) return;
    if (response.status !== 202) break;
    el.note.hidden = false;
    el.note.textContent = t("preparing_video");
    await new Promise((resolve) => setTimeout(resolve, RENDITION_POLL_MS));
    if (mine !== token) return;
  }
  el.note.hidden = true;
  if (isMoment(item) && video.getAttribute("src") === item.clip_url && !video.paused) return; // keep watching
  startAt(from);
  video.src = item.play_url;
}

function playLive() {
  const item = state.results[state.viewerIndex];
  if (!item || !item.motion_url) return;
  el.image.hidden = true;
  el.video.hidden = false;
  el.video.poster = item.view_url;
  el.video.src = item.motion_url;
  el.video.addEventListener(
    "ended",
    () => {
      if (state.results[state.viewerIndex] !== item) return;
      el.video.hidden = true;
      el.image.hidden = false;
    },
    { once: true },
  );
  el.video.play().catch(() => {}); // autoplay refused: the controls are there to start it
}

async function stepViewer(delta) {
  const target = state.viewerIndex + delta;
  if (target < 0) return;
  if (target >= state.results.length) {
    if (state.results.length >= state.total || state.loading) return;
    await runSearch(true);
    if (target >= state.results.length) return;
  }
  state.viewerIndex = target;
  renderViewer();
}

function closeViewer() {
  if (el.dialog.open) el.dialog.close();
}

// Back in the grid, the card that was open has the focus.
function onViewerClosed() {
  token += 1;
  el.video.pause();
  el.video.removeAttribute("src");
  el.video.load();
  const card = document.querySelector(`#results .result[data-index="${state.viewerIndex}"] .result-open`);
  if (card) {
    card.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest" });
  }
}
