/* The large view's side panel: file details, camera information (EXIF) and place, fetched from GET /api/items/ID. */
import { fetchJson } from "./api.js";
import { formatBytes, formatClock, formatDate, formatNumber, formatSpan } from "./format.js";
import { t } from "./i18n.js";
import { placeLabel } from "./places.js";
import { isMoment } from "./state.js";
import { renderViewerTags } from "./tags.js";

const GPS_DIGITS = 6; // about 10 cm
const details = document.getElementById("viewer-details");
let shown = 0; // so a slow answer for an item no longer shown is dropped

function row(label, value, className) {
  const dt = document.createElement("dt");
  dt.textContent = label;
  const dd = document.createElement("dd");
  dd.textContent = value;
  if (className) dd.className = className;
  details.append(dt, dd);
}

/** The item's details at once, then its camera information and place when they arrive. */
export function renderDetails(item) {
  details.replaceChildren();
  const isVideo = item.kind === "video";
  row(t("detail_path"), item.path, "detail-path");
  row(t("detail_date"), formatDate(item.taken_at, true));
  row(t("detail_size"), formatBytes(item.size));
  if (item.width && item.height) row(t("detail_dimensions"), `${item.width} × ${item.height}`);
  if (isVideo) row(t("detail_kind"), t("detail_video")); // one video: "Video", not the filter's "Videos"
  if (isVideo && typeof item.duration === "number") row(t("detail_duration"), formatClock(item.duration));
  if (isMoment(item)) row(t("detail_moment"), formatSpan(item.start, item.end));
  renderViewerTags(details, item);
  const mine = ++shown;
  fetchJson(`/api/items/${item.id}`)
    .then((full) => {
      if (mine === shown) renderInfo(full);
    })
    .catch(() => {}); // the details above stand without the camera's
}

// The file's own facts (GET /api/items/ID's `info`): camera, lens, exposure, GPS as numbers, a video's codec.
function renderInfo(full) {
  const info = full.info || {};
  const camera = [info.camera_make, info.camera_model].filter(Boolean);
  // "Canon Canon EOS 5D": the make is left out when the model repeats it.
  if (camera.length === 2 && camera[1].toLowerCase().startsWith(camera[0].toLowerCase())) camera.shift();
  if (camera.length) row(t("info_camera"), camera.join(" "), "info-camera");
  if (info.lens) row(t("info_lens"), info.lens, "info-lens");
  const exposure = exposureText(info);
  if (exposure) row(t("info_exposure"), exposure, "info-exposure");
  if (typeof info.latitude === "number" && typeof info.longitude === "number") {
    const parts = [info.latitude.toFixed(GPS_DIGITS), info.longitude.toFixed(GPS_DIGITS)];
    let text = parts.join(", ");
    if (typeof info.altitude === "number") text += ` · ${formatNumber(Math.round(info.altitude))} m`;
    row(t("info_gps"), text, "info-gps");
  }
  const video = [info.codec, info.container].filter(Boolean).join(" · ");
  if (video) row(t("info_video"), video, "info-video");
  if (full.location) row(t("info_location"), placeLabel(full), "info-location");
  // The people whose faces were found in it, left to right (a face nobody was matched to yet: "Unnamed"); a
  // video's faces are listed frame by frame: each person once.
  const seen = new Set();
  const people = (full.faces || []).filter((face) => face.person_id !== null && !seen.has(face.person_id)
    && seen.add(face.person_id));
  if (people.length) {
    const names = people.map((face) => face.person_name || t("info_unnamed_person"));
    row(t("info_people"), names.join(t("info_people_separator")), "info-people");
  }
}

// "1/250 s · f/1.8 · ISO 100 · 4.2 mm (26 mm)"
function exposureText(info) {
  const parts = [];
  if (info.exposure_time) {
    const time = info.exposure_time;
    parts.push(time < 1 ? `1/${Math.round(1 / time)} s` : `${formatNumber(time)} s`);
  }
  if (info.f_number) parts.push(`f/${formatNumber(info.f_number)}`);
  if (info.iso) parts.push(`ISO ${info.iso}`);
  if (info.focal_length) {
    let focal = `${formatNumber(Math.round(info.focal_length * 10) / 10)} mm`;
    if (info.focal_length_35mm) focal += ` (${t("info_35mm", { mm: info.focal_length_35mm })})`;
    parts.push(focal);
  }
  return parts.join(" · ");
}

