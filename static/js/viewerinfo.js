/* The large view's side panel: file details, camera information (EXIF) and place, fetched from GET /api/items/ID. */
import { fetchJson } from "./api.js";
import { formatBytes, formatClock, formatDate, formatNumber, formatScore, formatSpan } from "./format.js";
import { hasString, t } from "./i18n.js";
import { isMoment } from "./state.js";

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
  if (typeof item.score === "number") row(t("detail_score"), formatScore(item.score));
  if (isVideo) row(t("detail_kind"), t("kind_video"));
  if (isVideo && typeof item.duration === "number") row(t("detail_duration"), formatClock(item.duration));
  if (isMoment(item)) row(t("detail_moment"), formatSpan(item.start, item.end));
  const mine = ++shown;
  fetchJson(`/api/items/${item.id}`)
    .then((full) => {
      if (mine === shown) renderInfo(full);
    })
    .catch(() => {}); // the details above stand without the camera's
}

// {camera, lens, exposure…, gps: {latitude, longitude, altitude}} → rows; the names the page knows are translated.
function renderInfo(full) {
  const info = full.info || {};
  for (const [key, value] of Object.entries(info)) {
    if (value == null || value === "" || ["width", "height", "size"].includes(key)) continue;
    row(hasString(`info_${key}`) ? t(`info_${key}`) : key.replace(/_/g, " "), infoText(key, value), `info-${key}`);
  }
  const location = full.location;
  if (location) row(t("info_location"), locationText(location), "info-location");
}

function infoText(key, value) {
  if (key === "gps" && typeof value === "object") {
    const lat = value.latitude != null ? value.latitude : value.lat;
    const lon = value.longitude != null ? value.longitude : value.lon;
    const parts = [lat, lon].filter((n) => typeof n === "number").map((n) => n.toFixed(GPS_DIGITS));
    if (typeof value.altitude === "number") parts.push(`${formatNumber(Math.round(value.altitude))} m`);
    return parts.join(", ");
  }
  if (Array.isArray(value)) return value.join(" · ");
  if (typeof value === "object") return Object.values(value).filter((v) => v != null && v !== "").join(" · ");
  return String(value);
}

function locationText(location) {
  if (typeof location === "string") return location;
  if (Array.isArray(location)) return location.join("\n");
  if (Array.isArray(location.lines)) return location.lines.join("\n");
  return Object.values(location).filter((v) => typeof v === "string" || typeof v === "number").join(", ");
}
