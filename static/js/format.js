/* Numbers, dates, durations, sizes and scores as the page shows them, in the current language. */
import { locale, t } from "./i18n.js";

function parseDate(iso) {
  if (!iso) return null;
  const date = new Date(iso); // no offset in the string: read as the camera's wall-clock time
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "Jul 6, 2021" (with the time when `withTime`), or "No date". */
export function formatDate(iso, withTime) {
  const date = parseDate(iso);
  if (!date) return t("no_date");
  const options = { year: "numeric", month: "short", day: "numeric" };
  if (withTime) Object.assign(options, { hour: "2-digit", minute: "2-digit" });
  return new Intl.DateTimeFormat(locale(), options).format(date);
}

export const formatNumber = (value) => new Intl.NumberFormat(locale()).format(value);

/** 3725 → "1 h 2 min", 75 → "1 min 15 s", 8 → "8 s" (two units at most). */
export function formatDuration(seconds) {
  const [h, m, s] = t("duration_units");
  const total = Math.max(0, Math.round(seconds));
  const parts = [[Math.floor(total / 3600), h], [Math.floor((total % 3600) / 60), m], [total % 60, s]];
  const first = parts.findIndex(([value]) => value > 0);
  if (first < 0) return `0 ${s}`;
  return parts.slice(first, first + 2).filter(([value]) => value > 0).map(([value, unit]) => `${value} ${unit}`)
    .join(" ");
}

/** 1536 → "1.5 KB"; "—" when unknown. */
export function formatBytes(bytes) {
  if (bytes == null || Number.isNaN(bytes)) return "—";
  const units = t("bytes");
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(value)} ${units[unit]}`;
}

/** 0.4567 → "0.457"; a score that rounds to zero is "0.000", never "-0.000". */
export function formatScore(score) {
  if (typeof score !== "number") return "—";
  const text = score.toFixed(3);
  return Number(text) === 0 ? (0).toFixed(3) : text;
}

/** 75.3 → "1:15"; 3725 → "1:02:05"; with `tenths`, 2.44 → "0:02.4". */
export function formatClock(seconds, tenths) {
  const value = Math.max(0, seconds || 0);
  const whole = Math.floor(value);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  let sec = String(whole % 60).padStart(2, "0");
  if (tenths) sec += `.${Math.min(9, Math.floor((value - whole) * 10 + 1e-6))}`;
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/** A video moment's span: "0:02.0–0:02.9" (tenths, so a short moment never reads "0:02–0:02"), or with whole
 * seconds when both ends are whole. */
export function formatSpan(start, end) {
  const whole = Number.isInteger(start) && Number.isInteger(end) && end > start;
  const to = Math.max(end, start + 0.1);
  return `${formatClock(start, !whole)}–${formatClock(whole ? to : Math.ceil(to * 10 - 1e-6) / 10, !whole)}`;
}
