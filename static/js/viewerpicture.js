/* The viewer's picture: thumbnail then screen-sized rendition (original on zoom), zoom, pan and full screen. */
// The thumbnail shows at once (with a spinner) while the rendition loads; zoom by double-click or double-tap, the
// wheel or a pinch, pan by dragging.
import { t } from "./i18n.js";

const MAX_ZOOM = 8;
const TAP_ZOOM = 2.5; // a double-click or double-tap zooms this far (again: back to the whole picture)
const WHEEL_RATE = 0.002; // zoom factor per wheel pixel: exp(-deltaY * rate)
const DOUBLE_TAP_MS = 320;
const DOUBLE_TAP_PX = 30;
const el = {
  stage: document.getElementById("viewer-stage"),
  image: document.getElementById("viewer-image"),
};
const tools = { bar: null, zoom: null, full: null };
let shown = null; // {item, loader, full}: the picture shown and the rendition loading
let zoom = { s: 1, x: 0, y: 0 };
const pointers = new Map(); // pointerId → {x, y}
let gesture = null; // {pinch: {distance, s, mid}} or {pan: {x, y, zx, zy}}
let multiTouch = false; // this gesture had two fingers: it is no swipe
let lastTap = null; // the last touch tap (a second one soon after, near it, is a double tap)
let pressedAt = null; // where the finger went down (a tap does not move)
let lastTouchUp = 0; // when a finger last left the picture: a dblclick then is the browser's echo of a double tap

export function bindPicture() {
  tools.bar = document.createElement("div");
  tools.bar.className = "viewer-tools";
  tools.zoom = toolButton("viewer-zoom", () => (zoom.s > 1 ? setZoom(1) : zoomAt(TAP_ZOOM, centre())));
  tools.full = toolButton("viewer-full", toggleFullScreen);
  tools.full.hidden = !document.fullscreenEnabled;
  tools.bar.append(tools.zoom, tools.full);
  el.stage.append(tools.bar);
  document.addEventListener("fullscreenchange", renderTools);
  el.image.addEventListener("dblclick", (event) => {
    if (Date.now() - lastTouchUp < DOUBLE_TAP_MS * 3) return; // a double tap, already counted in onUp
    event.preventDefault();
    zoomAt(zoom.s > 1 ? 1 : TAP_ZOOM, event);
  });
  el.stage.addEventListener("wheel", onWheel, { passive: false });
  el.stage.addEventListener("pointerdown", onDown);
  el.stage.addEventListener("pointermove", onMove);
  el.stage.addEventListener("pointerup", onUp);
  el.stage.addEventListener("pointercancel", onUp);
  el.image.addEventListener("dragstart", (event) => event.preventDefault());
  renderTools();
}

function toolButton(className, act) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = className;
  button.addEventListener("click", (event) => {
    event.stopPropagation();
    act();
  });
  return button;
}

/** Show `item`'s picture: its thumbnail now, the screen-sized rendition (`view_url`) once it has loaded. */
export function showPicture(item) {
  setZoom(1);
  el.image.alt = item.name;
  if (shown && shown.item.id === item.id && el.image.getAttribute("src") === item.view_url) return;
  const loader = new Image();
  shown = { item, loader, full: false };
  el.image.src = item.thumbnail_url; // the grid has loaded it: at once, from the cache
  el.stage.classList.add("is-fetching");
  el.stage.setAttribute("aria-busy", "true");
  el.stage.title = t("loading_picture");
  const done = (ok) => {
    if (!shown || shown.loader !== loader) return; // another picture was asked for meanwhile
    if (ok) el.image.src = item.view_url;
    el.stage.classList.remove("is-fetching");
    el.stage.setAttribute("aria-busy", "false");
    el.stage.title = "";
  };
  loader.addEventListener("load", () => done(true));
  loader.addEventListener("error", () => done(false)); // the thumbnail stays: better than an empty stage
  loader.src = item.view_url;
}

/** The viewer shows no picture (a video, or it closed). */
export function clearPicture() {
  shown = null;
  setZoom(1);
  el.stage.classList.remove("is-fetching");
  el.stage.setAttribute("aria-busy", "false");
  el.stage.title = "";
  if (document.fullscreenElement === el.stage) document.exitFullscreen().catch(() => {});
}

/** Whether the gesture in progress is the picture's (zoomed in, or two fingers): no swipe to the next result. */
export const pictureGesture = () => zoom.s > 1 || multiTouch;

/** Whether a click landed beside the picture (on the stage, or on the picture's letterbox at full view). */
export function besidePicture(event) {
  if (event.target === el.stage) return true;
  if (event.target !== el.image || zoom.s > 1 || !el.image.naturalWidth) return false;
  const box = el.image.getBoundingClientRect();
  const scale = Math.min(box.width / el.image.naturalWidth, box.height / el.image.naturalHeight);
  const width = el.image.naturalWidth * scale;
  const height = el.image.naturalHeight * scale;
  const x = event.clientX - box.left - (box.width - width) / 2;
  const y = event.clientY - box.top - (box.height - height) / 2;
  return x < 0 || y < 0 || x > width || y > height;
}

const centre = () => {
  const box = el.stage.getBoundingClientRect();
  return { clientX: box.left + box.width / 2, clientY: box.top + box.height / 2 };
};

// Zoom to `s` keeping the point under (clientX, clientY) where it is.
function zoomAt(s, point) {
  const next = Math.min(MAX_ZOOM, Math.max(1, s));
  const box = el.image.getBoundingClientRect();
  const px = point.clientX - (box.left - zoom.x);
  const py = point.clientY - (box.top - zoom.y);
  const ratio = next / zoom.s;
  setZoom(next, px - (px - zoom.x) * ratio, py - (py - zoom.y) * ratio);
}

function setZoom(s, x = 0, y = 0) {
  const width = el.image.clientWidth;
  const height = el.image.clientHeight;
  zoom = s <= 1 ? { s: 1, x: 0, y: 0 } : { s, x: clamp(x, width - s * width, 0), y: clamp(y, height - s * height, 0) };
  el.image.style.transform = zoom.s === 1 ? "" : `translate(${zoom.x}px, ${zoom.y}px) scale(${zoom.s})`;
  el.stage.classList.toggle("is-zoomed", zoom.s > 1);
  if (zoom.s > 1) loadOriginal();
  renderTools();
}

const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

// Zoomed in, the screen-sized rendition is not enough: the original (or, where browsers cannot show it, the
// largest rendition there is) replaces it once loaded.
function loadOriginal() {
  if (!shown || shown.full || !shown.item.zoom_url || shown.item.zoom_url === shown.item.view_url) return;
  shown.full = true;
  const { item, loader } = shown;
  const original = new Image();
  original.addEventListener("load", () => {
    if (shown && shown.loader === loader) el.image.src = item.zoom_url;
  });
  original.src = item.zoom_url;
}

function onWheel(event) {
  if (!shown || el.image.hidden) return;
  event.preventDefault();
  zoomAt(zoom.s * Math.exp(-event.deltaY * WHEEL_RATE), event);
}

function onDown(event) {
  if (!shown || el.image.hidden || event.target.closest(".viewer-tools")) return;
  if (pointers.size === 0) multiTouch = false;
  pressedAt = { x: event.clientX, y: event.clientY };
  pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
  if (pointers.size === 2) {
    multiTouch = true;
    const [a, b] = [...pointers.values()];
    gesture = { pinch: { distance: Math.hypot(a.x - b.x, a.y - b.y) || 1, s: zoom.s } };
  } else if (pointers.size === 1 && zoom.s > 1) {
    gesture = { pan: { x: event.clientX, y: event.clientY, zx: zoom.x, zy: zoom.y } };
    try {
      el.stage.setPointerCapture(event.pointerId); // the pan follows the pointer off the stage
    } catch (_) {
      // a pointer already gone (or a synthetic one): the pan works inside the stage
    }
  }
}

function onMove(event) {
  if (!pointers.has(event.pointerId)) return;
  pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
  if (gesture && gesture.pinch && pointers.size === 2) {
    const [a, b] = [...pointers.values()];
    const distance = Math.hypot(a.x - b.x, a.y - b.y);
    zoomAt(gesture.pinch.s * (distance / gesture.pinch.distance), { clientX: (a.x + b.x) / 2, clientY: (a.y + b.y) / 2 });
  } else if (gesture && gesture.pan) {
    const { x, y, zx, zy } = gesture.pan;
    setZoom(zoom.s, zx + event.clientX - x, zy + event.clientY - y);
  }
}

function onUp(event) {
  if (!pointers.delete(event.pointerId)) return;
  if (pointers.size === 0) gesture = null;
  if (event.type !== "pointerup" || event.pointerType === "mouse") return;
  const now = Date.now();
  lastTouchUp = now;
  const moved = !pressedAt || Math.hypot(event.clientX - pressedAt.x, event.clientY - pressedAt.y) >= DOUBLE_TAP_PX;
  if (multiTouch || moved || event.target !== el.image) return; // a pinch, a pan or a swipe is no tap
  // A double tap zooms in at the finger (or back out).
  const near = lastTap && Math.hypot(event.clientX - lastTap.x, event.clientY - lastTap.y) < DOUBLE_TAP_PX;
  if (lastTap && near && now - lastTap.at < DOUBLE_TAP_MS) {
    lastTap = null;
    zoomAt(zoom.s > 1 ? 1 : TAP_ZOOM, event);
  } else lastTap = { at: now, x: event.clientX, y: event.clientY };
}

function toggleFullScreen() {
  if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
  else el.stage.requestFullscreen().catch(() => {});
}

function renderTools() {
  if (!tools.zoom) return;
  const zoomed = zoom.s > 1;
  tools.zoom.textContent = zoomed ? "−" : "+";
  tools.zoom.title = t(zoomed ? "zoom_out" : "zoom_in");
  tools.zoom.setAttribute("aria-label", tools.zoom.title);
  const full = document.fullscreenElement === el.stage;
  tools.full.textContent = full ? "⤡" : "⤢";
  tools.full.title = t(full ? "exit_full_screen" : "full_screen");
  tools.full.setAttribute("aria-label", tools.full.title);
}

/** Words again after a language switch. */
export const renderPictureTools = renderTools;

/** Lay `overlay` (boxes drawn over the picture: its text, its faces) over the picture itself, not the <img> box
 * around it (object-fit: contain letterboxes it). */
export function coverPicture(image, overlay) {
  const frame = image.getBoundingClientRect();
  const stage = image.parentElement.getBoundingClientRect();
  const scale = Math.min(frame.width / image.naturalWidth, frame.height / image.naturalHeight);
  const width = image.naturalWidth * scale;
  const height = image.naturalHeight * scale;
  Object.assign(overlay.style, {
    left: `${frame.left - stage.left + (frame.width - width) / 2}px`,
    top: `${frame.top - stage.top + (frame.height - height) / 2}px`,
    width: `${width}px`,
    height: `${height}px`,
  });
}
