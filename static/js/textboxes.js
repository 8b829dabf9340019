/* Text read in photos (OCR): card snippets, matched boxes over the large view, text to copy, OCR status. */
import { fetchJson } from "./api.js";
import { formatNumber } from "./format.js";
import { t } from "./i18n.js";
import { state } from "./state.js";
import { toast } from "./toast.js";
import { coverPicture } from "./viewerpicture.js";

let shown = null; // {item, lines, overlay, section} of the photo in the large view
let request = 0; // bumped per photo, so a slow answer for the previous photo is dropped

/** Fold text as the server does for search (textnorm.py), less traditional → simplified: NFKC, case, and only
 * letters, digits and marks. */
function foldText(text) {
  return text.normalize("NFKC").toLowerCase().replace(/[^\p{L}\p{N}\p{M}]/gu, "");
}

/** The lines that match the current query: the hit's snippet, and every line containing all its words. */
function matchedLines(lines, query, snippet) {
  const terms = (query || "").split(/\s+/).map(foldText).filter(Boolean);
  return lines.map((line) => {
    const folded = foldText(line.text);
    return line.text === snippet || (terms.length > 0 && terms.every((term) => folded.includes(term)));
  });
}

/** Cards: the line that matched, under the name. */
export function addSnippet(card, item) {
  if (!item.snippet) return;
  const snippet = document.createElement("p");
  snippet.className = "result-snippet";
  snippet.textContent = item.snippet;
  snippet.title = t("text_in_photo");
  card.querySelector(".result-meta").append(snippet);
}

/** The large view shows `item` in `image` (null for a video): fetch its text, draw the boxes, list the lines. */
export async function showItemText(item, image, details) {
  clearItemText();
  if (!image || item.kind !== "image") return;
  const mine = ++request;
  let body;
  try {
    body = await fetchJson(`/api/items/${item.id}`);
  } catch (error) {
    return; // the photo shows without its text; the details already say what it is
  }
  if (mine !== request || !body.text || body.text.lines.length === 0) return;
  const query = state.query && state.query.q;
  shown = { item, lines: body.text.lines, image, matched: matchedLines(body.text.lines, query, item.snippet) };
  shown.overlay = drawBoxes(image, shown.lines, shown.matched);
  shown.section = textSection(shown.lines, details);
  window.addEventListener("resize", placeOverlay); // the same listener once, however many photos are shown
  // Placed again whenever the picture (re)loads: the viewer may swap a quick preview for the full view.
  image.addEventListener("load", placeOverlay);
  placeOverlay();
}

/** Remove what `showItemText` added (another photo, a video, the view closed). */
export function clearItemText() {
  request += 1;
  if (shown) {
    shown.overlay.remove();
    shown.section.remove();
  }
  shown = null;
}

function drawBoxes(image, lines, matched) {
  const overlay = document.createElement("div");
  overlay.className = "ocr-boxes";
  overlay.setAttribute("aria-hidden", "true");
  lines.forEach((line, index) => {
    if (!matched[index]) return;
    const [left, top, right, bottom] = line.box;
    const box = document.createElement("span");
    box.className = "ocr-box";
    box.title = line.text;
    Object.assign(box.style, {
      left: `${left * 100}%`,
      top: `${top * 100}%`,
      width: `${(right - left) * 100}%`,
      height: `${(bottom - top) * 100}%`,
    });
    overlay.append(box);
  });
  image.parentElement.append(overlay);
  return overlay;
}

function placeOverlay() {
  if (!shown || !shown.image.naturalWidth) return;
  coverPicture(shown.image, shown.overlay);
}

function textSection(lines, details) {
  const section = document.createElement("section");
  section.className = "ocr-text";
  const head = document.createElement("div");
  head.className = "ocr-text-head";
  const title = document.createElement("h3");
  title.textContent = t("text_in_photo");
  const copy = document.createElement("button");
  copy.type = "button";
  copy.className = "ghost-button small ocr-copy";
  copy.textContent = t("copy_text");
  const text = document.createElement("pre");
  text.className = "ocr-lines";
  text.textContent = lines.map((line) => line.text).join("\n");
  copy.addEventListener("click", () => copyText(text.textContent));
  head.append(title, copy);
  section.append(head, text);
  details.after(section);
  return section;
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    toast(t("text_copied"));
  } catch (error) {
    toast(t("copy_text_failed"), "error"); // no clipboard (plain http): the text is there to select by hand
  }
}

/** The status line: the OCR pass after the scan's part ("Reading text 3 / 12", paused, or photos with text). */
export function appendOcrStatus(node, ocr) {
  if (!ocr || !ocr.enabled) return;
  let part = "";
  if (ocr.progress) {
    const counts = { done: formatNumber(ocr.progress.done), total: formatNumber(ocr.progress.total) };
    part = t(ocr.state === "paused" ? "ocr_paused" : "ocr_reading", counts);
  } else if (ocr.counts.with_text) {
    part = t("ocr_with_text", { n: formatNumber(ocr.counts.with_text) });
  }
  if (part) node.textContent += ` · ${part}`;
}

