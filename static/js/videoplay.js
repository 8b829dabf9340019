/* Playing a video in the large view: muted from its moment's start, stopping at the moment's end; renditions. */
import { apiFetch } from "./api.js";
import { t } from "./i18n.js";
import { isMoment } from "./state.js";

const RENDITION_POLL_MS = 2000; // how often to ask whether the server's playable version of a video is ready
const video = document.getElementById("viewer-video");
const note = document.getElementById("viewer-note");
let token = 0; // bumped whenever the view changes, so a stale wait for a video rendition stops
let stopAt = null; // {end, off}: where the moment ends (seconds in the playing file), once

video.addEventListener("timeupdate", () => {
  if (stopAt && video.currentTime >= stopAt.end) {
    video.pause();
    video.currentTime = stopAt.end;
    stopAt = null; // pressing play again goes on past the moment
  }
});

/** Stop whatever plays (the view changed or closed). */
export function stopVideo() {
  token += 1;
  stopAt = null;
  video.pause();
  video.removeAttribute("src");
  video.load();
}

// Start `src` at `offset` s, muted (browsers allow muted autoplay), stopping at `end` s when given.
function startAt(src, offset, end) {
  video.muted = true;
  video.autoplay = true;
  video.addEventListener(
    "loadedmetadata",
    () => {
      if (offset > 0) video.currentTime = offset;
      stopAt = end != null ? { end } : null;
      video.play().catch(() => {}); // refused anyway: the controls are there
    },
    { once: true },
  );
  video.src = src;
}

/** Play a video result in place from its moment (or from `from` s, e.g. a time kept in the address). Browsers
 * play H.264/VP9 originals directly; for others (HEVC, AVI…) the server makes an H.264 rendition on demand (202
 * until ready) and the moment's clip plays meanwhile. */
export async function playVideo(item, from) {
  stopVideo();
  const mine = token;
  const moment = isMoment(item);
  const start = from != null ? from : moment ? item.start : 0;
  const end = moment && start < item.end - 0.05 ? item.end : null;
  video.poster = item.thumbnail_url;
  if (item.playable) {
    startAt(item.play_url, start, end);
    return;
  }
  if (moment) startAt(item.clip_url, Math.max(0, start - item.start), end == null ? null : item.end - item.start);
  for (;;) {
    let response;
    try {
      response = await apiFetch(item.play_url, { method: "HEAD" });
    } catch (_) {
      return; // the server is gone: the clip (if any) keeps playing
    }
    if (mine !== token) return;
    if (response.status !== 202) break;
    note.hidden = false;
    note.textContent = t("preparing_video");
    await new Promise((resolve) => setTimeout(resolve, RENDITION_POLL_MS));
    if (mine !== token) return;
  }
  note.hidden = true;
  if (moment && video.getAttribute("src") === item.clip_url && !video.paused) return; // keep watching
  startAt(item.play_url, start, end);
}

/** The time in the original that is showing (the clip's times are offset by the moment's start). */
export function videoTime(item) {
  if (!video.getAttribute("src")) return null;
  const offset = isMoment(item) && video.getAttribute("src") === item.clip_url ? item.start : 0;
  return video.currentTime + offset;
}
