/* The query asked: words (with -word exclusions), a picture or "similar to" an item (the chip), and the address's one. */
import { apiFetch, fetchJson } from "./api.js";
import { excludedWords, filterParams, setFilters } from "./filters.js";
import { formatBytes } from "./format.js";
import { t } from "./i18n.js";
import { setOptions } from "./options.js";
import { runSearch } from "./search.js";
import { isMoment, MAX_UPLOAD, state } from "./state.js";
import { toast } from "./toast.js";
import { quietly, saveLocation } from "./urlstate.js";

const IMAGE_EXTENSIONS = /\.(jpe?g|png|webp|gif|bmp|tiff?|heic|heif|avif)$/i;
const el = {
  form: document.getElementById("search-form"),
  query: document.getElementById("query"),
  imageButton: document.getElementById("image-button"),
  imageInput: document.getElementById("image-input"),
  chip: document.getElementById("query-chip"),
  chipImage: document.getElementById("query-chip-image"),
  chipLabel: document.getElementById("query-chip-label"),
  clearImage: document.getElementById("clear-image"),
};
let imageFile = null; // the query picture, and its object URL for the chip
let imageUrl = null;
let serverPreview = false; // the chip shows the server's JPEG of the picture (the browser could not decode it)
let like = null; // {id, name, thumb, t}: the item (and video moment, t in ms) a "similar" query is about

export const looksLikeImage = (file) =>
  (file.type && file.type.startsWith("image/")) || IMAGE_EXTENSIONS.test(file.name || "");

/** "red car -truck -\"bus stop\"" → {q: "red car", exclude: ["truck", "bus stop"]}. */
function splitQuery(raw) {
  const exclude = [];
  const q = raw.replace(/(^|\s)-(?:"([^"]+)"|(\S+))/g, (match, space, quoted, word) => {
    exclude.push((quoted || word).trim());
    return " ";
  }).replace(/\s+/g, " ").trim();
  return { q, exclude: exclude.filter(Boolean) };
}

export function bindQuery() {
  el.form.addEventListener("submit", (event) => {
    event.preventDefault();
    submitSearch();
  });
  el.imageButton.addEventListener("click", () => el.imageInput.click());
  el.imageInput.addEventListener("change", () => {
    const file = el.imageInput.files && el.imageInput.files[0];
    if (file) setQueryImage(file);
  });
  el.clearImage.addEventListener("click", () => clearQueryImage(true));
  el.chipImage.addEventListener("error", () => {
    if (!el.chipImage.getAttribute("src")) return;
    if (imageFile && !serverPreview) previewOnServer(imageFile);
    else el.chip.classList.add("chip-broken");
  });
  el.query.addEventListener("keydown", (event) => {
    if (event.key === "Backspace" && !el.query.value && (imageFile || like)) clearQueryImage(false);
  });
}

/** "/" anywhere outside a field goes to the search box. */
export function focusQuery() {
  el.query.focus();
  el.query.select();
}

/** The query the inputs ask for; null (the timeline) when there is none. */
export function currentQuery() {
  const raw = el.query.value.trim();
  const { q, exclude } = splitQuery(raw);
  if (imageFile) return { mode: "image", file: imageFile, q, exclude };
  if (like && !raw) return { mode: "like", like };
  if (q) return { mode: "text", q, raw, exclude };
  const name = filterParams(false).get("name");
  if (name) return { mode: "name", name, exclude };
  return null;
}

/** Put `text` in the search box and search for it (a chip removed or accepted). */
export function searchFor(text) {
  el.query.value = text;
  submitSearch();
}

function submitSearch() {
  const query = currentQuery();
  if (query && query.mode === "text" && like) clearQueryImage(false);
  state.query = query;
  runSearch(false);
  saveLocation(true);
}

/** Search with a picture (with the words typed, if any); refused with a message if it is no image or too big. */
export function setQueryImage(file) {
  if (!file) return;
  if (!looksLikeImage(file)) {
    toast(t("not_an_image", { name: file.name || "?" }), "error");
    return;
  }
  if (MAX_UPLOAD && file.size > MAX_UPLOAD) {
    toast(t("too_large", { name: file.name, size: formatBytes(file.size), max: formatBytes(MAX_UPLOAD) }), "error");
    return;
  }
  releaseImageUrl();
  imageFile = file;
  like = null;
  imageUrl = URL.createObjectURL(file);
  renderChip();
  state.query = currentQuery();
  runSearch(false);
  saveLocation(true);
}

// HEIC and TIFF do not decode in browsers: the server makes a JPEG of the picture for the chip.
async function previewOnServer(file) {
  serverPreview = true;
  const form = new FormData();
  form.append("image", file, file.name || "query-image");
  try {
    const response = await apiFetch("/api/query-preview", { method: "POST", body: form });
    if (!response.ok || imageFile !== file) throw new Error(String(response.status));
    const blob = await response.blob();
    if (imageFile !== file) return;
    releaseImageUrl();
    imageUrl = URL.createObjectURL(blob);
    el.chipImage.src = imageUrl;
  } catch (_) {
    el.chip.classList.add("chip-broken"); // the name still says which picture it is
  }
}

function releaseImageUrl() {
  if (imageUrl) URL.revokeObjectURL(imageUrl);
  imageUrl = null;
}

// rerun: search again with the words alone (or show the timeline when there are none).
function clearQueryImage(rerun) {
  releaseImageUrl();
  imageFile = null;
  serverPreview = false;
  like = null;
  el.imageInput.value = "";
  renderChip();
  if (!rerun) return;
  state.query = currentQuery();
  runSearch(false);
  saveLocation(true);
  el.query.focus();
}

/** Show the near-identical items `item` stands for (its stack); Back returns to the results. */
export function openStack(item) {
  state.query = { mode: "stack", stack: { id: item.id, name: item.name } };
  runSearch(false);
  saveLocation(true);
  window.scrollTo({ top: 0 });
}

/** Search for results similar to `item` (for a video moment: to its matched frame). */
export function startLike(item) {
  releaseImageUrl();
  imageFile = null;
  serverPreview = false;
  el.imageInput.value = "";
  const at = isMoment(item) ? Math.round(item.time * 1000) : null;
  like = { id: item.id, name: item.name, thumb: item.thumbnail_url, t: at };
  el.query.value = "";
  renderChip();
  state.query = { mode: "like", like };
  runSearch(false);
  saveLocation(true);
  window.scrollTo({ top: 0, behavior: "smooth" });
}

export function renderChip() {
  const active = Boolean(imageFile || like);
  el.chip.hidden = !active;
  el.form.classList.toggle("has-chip", active);
  if (!active) {
    el.chipImage.removeAttribute("src");
    el.chipLabel.textContent = "";
    return;
  }
  el.chip.classList.remove("chip-broken");
  if (imageFile) {
    el.chipImage.src = imageUrl;
    el.chipImage.alt = t("query_image");
    el.chipLabel.textContent = imageFile.name || t("query_image");
    el.chip.title = imageFile.name || "";
  } else {
    el.chipImage.src = like.thumb;
    el.chipImage.alt = like.name;
    el.chipLabel.textContent = t("similar_chip", { name: like.name });
    el.chip.title = like.name;
  }
}

/** Show what the address's parameters ask for (a reload, Back/Forward, a shared link); resolves when it shows. */
export async function restoreQuery(params) {
  setFilters(params);
  setOptions(params);
  el.query.value = params.get("q") || "";
  const stackId = parseInt(params.get("stack") || "", 10);
  if (stackId > 0 && !el.query.value) {
    try {
      const item = await fetchJson(`/api/items/${stackId}`);
      state.query = { mode: "stack", stack: { id: item.id, name: item.name } };
    } catch (error) {
      state.query = null;
    }
    return quietly(() => runSearch(false));
  }
  const likeId = parseInt(params.get("like") || "", 10);
  if (!(likeId > 0) || el.query.value) {
    releaseImageUrl();
    imageFile = null;
    like = null;
    renderChip();
    state.query = currentQuery();
    return quietly(() => runSearch(false));
  }
  try {
    const item = await fetchJson(`/api/items/${likeId}`);
    const at = parseInt(params.get("lt") || "", 10);
    like = { id: item.id, name: item.name, thumb: item.thumbnail_url, t: at >= 0 ? at : null };
    releaseImageUrl();
    imageFile = null;
    renderChip();
    state.query = { mode: "like", like };
    return quietly(() => runSearch(false));
  } catch (error) {
    state.error = error.message;
    return quietly(() => runSearch(false));
  }
}
