/* The query asked: words, a picture or "similar to" an item (shown in the chip); and the one the address asks for. */
import { fetchJson } from "./api.js";
import { formatBytes } from "./format.js";
import { t } from "./i18n.js";
import { renderResults } from "./results.js";
import { resetResults, runSearch } from "./search.js";
import { isMoment, MAX_UPLOAD, queryFromLocation, state } from "./state.js";
import { toast } from "./toast.js";

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
let like = null; // {id, name, thumb, t}: the item (and video moment, t in ms) a "similar" query is about

export const looksLikeImage = (file) =>
  (file.type && file.type.startsWith("image/")) || IMAGE_EXTENSIONS.test(file.name || "");

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
    if (el.chipImage.getAttribute("src")) el.chip.classList.add("chip-broken");
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

function currentQueryFromInputs() {
  const q = el.query.value.trim();
  if (imageFile) return { mode: "image", file: imageFile, q };
  if (like && !q) return { mode: "like", like };
  if (q) return { mode: "text", q };
  return null;
}

function submitSearch() {
  const query = currentQueryFromInputs();
  if (!query) {
    toast(t("need_query"));
    el.query.focus();
    return;
  }
  if (query.mode === "text" && like) clearQueryImage(false);
  state.query = query;
  runSearch(false);
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
  state.query = { mode: "image", file, q: el.query.value.trim() };
  runSearch(false);
}

function releaseImageUrl() {
  if (imageUrl) URL.revokeObjectURL(imageUrl);
  imageUrl = null;
}

// rerun: search again with the words alone (or show the welcome message when there are none).
function clearQueryImage(rerun) {
  releaseImageUrl();
  imageFile = null;
  like = null;
  el.imageInput.value = "";
  renderChip();
  if (!rerun) return;
  const q = el.query.value.trim();
  if (q) {
    state.query = { mode: "text", q };
    runSearch(false);
  } else {
    resetResults();
  }
  el.query.focus();
}

/** Search for results similar to `item` (for a video moment: to its matched frame). */
export function startLike(item) {
  releaseImageUrl();
  imageFile = null;
  el.imageInput.value = "";
  const at = isMoment(item) ? Math.round(item.time * 1000) : null;
  like = { id: item.id, name: item.name, thumb: item.thumbnail_url, t: at };
  el.query.value = "";
  renderChip();
  state.query = { mode: "like", like };
  runSearch(false);
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

/** Repeat the query in the page's address (?q= words, ?like= an item id). */
export async function restoreFromLocation() {
  const asked = queryFromLocation();
  if (asked && asked.q) {
    el.query.value = asked.q;
    state.query = { mode: "text", q: asked.q };
    runSearch(false);
  } else if (asked) {
    try {
      startLike(await fetchJson(`/api/items/${asked.like}`));
    } catch (error) {
      state.error = error.message;
      renderResults(true);
    }
  }
}
