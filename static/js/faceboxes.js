/* Face boxes over the photo in the large view (a toggle) and "who is this?" on a tapped face: name it or move it out. */
// The boxes come from GET /api/items/ID's `faces`, as fractions of the upright picture; naming a face calls
// POST /api/faces/ID/name (a new or an existing person), moving it out POST /api/faces/ID/move.
import { fetchJson } from "./api.js";
import { formatNumber } from "./format.js";
import { t } from "./i18n.js";
import { toast } from "./toast.js";
import { renderDetails } from "./viewerinfo.js";
import { coverPicture } from "./viewerpicture.js";

const SHOW_KEY = "materialsearch.faces"; // the toggle is remembered: "1" shows the boxes
const CROP_PX = 96; // the face drawn in the dialog
const QUICK_PICKS = 8; // named people offered as buttons (the rest through the name field's list)
const el = { toggle: document.getElementById("viewer-faces") };
let shown = null; // {item, image, faces, overlay}
let request = 0; // bumped per photo, so a slow answer for the previous photo is dropped
let dialog = null;

const showing = () => {
  try {
    return window.localStorage.getItem(SHOW_KEY) === "1";
  } catch (_) {
    return false;
  }
};

el.toggle.addEventListener("click", () => {
  const next = !showing();
  try {
    window.localStorage.setItem(SHOW_KEY, next ? "1" : "0");
  } catch (_) {
    /* not remembered */
  }
  draw();
});
window.addEventListener("resize", place); // the same listener once, however many photos are shown

/** The large view shows `item` in `image` (null for a video): fetch its faces, offer the toggle, draw the boxes. */
export async function showFaces(item, image) {
  clearFaces();
  if (!image || item.kind !== "image") return;
  const mine = ++request;
  let body;
  try {
    body = await fetchJson(`/api/items/${item.id}`);
  } catch (_) {
    return; // the photo shows without its faces
  }
  if (mine !== request) return;
  shown = { item, image, faces: body.faces || [], overlay: null };
  image.addEventListener("load", place); // the viewer may swap a quick preview for the full view
  draw();
}

/** Remove what `showFaces` added (another photo, a video, the view closed). */
export function clearFaces() {
  request += 1;
  if (shown && shown.overlay) shown.overlay.remove();
  shown = null;
  el.toggle.hidden = true;
}

function draw() {
  if (!shown) return;
  if (shown.overlay) shown.overlay.remove();
  shown.overlay = null;
  const count = shown.faces.length;
  const on = showing();
  el.toggle.hidden = count === 0;
  el.toggle.textContent = on ? t("faces_hide") : t("faces_show", { n: formatNumber(count) });
  el.toggle.setAttribute("aria-pressed", on ? "true" : "false");
  if (!count || !on) return;
  const overlay = document.createElement("div");
  overlay.className = "face-boxes";
  for (const face of shown.faces) overlay.append(faceBox(face));
  shown.image.parentElement.append(overlay);
  shown.overlay = overlay;
  place();
}

function faceBox(face) {
  const [left, top, right, bottom] = face.box;
  const box = document.createElement("button");
  box.type = "button";
  box.className = `face-box${face.person_name ? "" : " is-unnamed"}`;
  box.dataset.face = String(face.id);
  const hint = face.person_name ? t("face_box_named", { name: face.person_name }) : t("face_box_unnamed");
  box.title = hint;
  box.setAttribute("aria-label", hint);
  // Placed by its centre, so a box grown to a finger's size (phone CSS) stays on the face.
  Object.assign(box.style, {
    left: `${((left + right) / 2) * 100}%`,
    top: `${((top + bottom) / 2) * 100}%`,
    width: `${(right - left) * 100}%`,
    height: `${(bottom - top) * 100}%`,
  });
  const label = document.createElement("span");
  label.className = "face-label";
  label.textContent = face.person_name || t("face_who");
  box.append(label);
  box.addEventListener("click", (event) => {
    event.stopPropagation();
    askWho(face);
  });
  box.addEventListener("pointerdown", (event) => event.stopPropagation()); // a tap on a face is no swipe
  box.addEventListener("pointerup", (event) => event.stopPropagation());
  return box;
}

function place() {
  if (!shown || !shown.overlay || !shown.image.naturalWidth) return;
  coverPicture(shown.image, shown.overlay);
}

// --- "who is this?" ----------------------------------------------------------------------------------------------
function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

function faceCrop(face) {
  const canvas = element("canvas", "face-crop");
  canvas.width = canvas.height = CROP_PX;
  const image = shown.image;
  const [left, top, right, bottom] = face.box;
  const w = image.naturalWidth;
  const h = image.naturalHeight;
  const side = Math.max((right - left) * w, (bottom - top) * h) * 1.4;
  const cx = ((left + right) / 2) * w;
  const cy = ((top + bottom) / 2) * h;
  try {
    canvas.getContext("2d").drawImage(image, cx - side / 2, cy - side / 2, side, side, 0, 0, CROP_PX, CROP_PX);
  } catch (_) {
    /* no crop: the dialog works without it */
  }
  return canvas;
}

async function askWho(face) {
  const item = shown.item;
  let people = [];
  try {
    people = (await fetchJson("/api/people")).people.filter((person) => person.name);
  } catch (_) {
    people = []; // a name can still be typed
  }
  if (dialog) dialog.remove();
  dialog = element("dialog", "face-dialog");
  dialog.setAttribute("aria-labelledby", "face-dialog-title");
  const form = element("form", "face-form");
  form.method = "dialog";
  const head = element("div", "face-dialog-head");
  const title = element("h2", null, t("face_dialog_title"));
  title.id = "face-dialog-title";
  const now = element("p", "face-dialog-now");
  if (face.person_id === null) now.textContent = t("face_dialog_nobody");
  else if (!face.person_name) now.textContent = t("face_dialog_unnamed");
  else now.textContent = t("face_dialog_now", { name: face.person_name });
  const heading = element("div");
  heading.append(title, now);
  head.append(faceCrop(face), heading);
  const field = element("label", "face-name-field");
  field.append(element("span", null, t("face_name_label")));
  const input = element("input", "face-name");
  input.type = "text";
  input.required = true;
  input.maxLength = 100;
  input.autocomplete = "off";
  input.placeholder = t("face_name_placeholder");
  input.value = face.person_name || "";
  input.setAttribute("list", "face-names");
  const names = element("datalist");
  names.id = "face-names";
  for (const person of people) names.append(new Option(person.name));
  field.append(input, names);
  const picks = element("div", "face-picks");
  const offered = people.filter((person) => person.id !== face.person_id).slice(0, QUICK_PICKS);
  if (offered.length) {
    picks.append(element("p", "face-picks-label", t("face_known")));
    for (const person of offered) {
      const pick = element("button", "ghost-button small face-pick", person.name);
      pick.type = "button";
      pick.addEventListener("click", () => answer(item, face, person.name));
      picks.append(pick);
    }
  }
  const actions = element("div", "face-dialog-actions");
  const save = element("button", "primary-button face-save", t("face_save"));
  save.type = "submit";
  const cancel = element("button", "ghost-button face-cancel", t("face_cancel"));
  cancel.type = "button";
  cancel.addEventListener("click", () => dialog.close());
  actions.append(save, cancel);
  const extra = element("div", "face-dialog-extra");
  if (face.person_id !== null) {
    const name = face.person_name || t("face_unnamed_person");
    const outText = face.person_name ? t("face_move_out", { name }) : t("face_move_out_unnamed");
    const out = element("button", "ghost-button small face-move-out", outText);
    out.type = "button";
    out.addEventListener("click", () => moveOut(item, face, name));
    const photos = element("a", "ghost-button small face-see-photos", t("face_see_photos", { name }));
    photos.href = `/?person=${face.person_id}`;
    extra.append(out, photos);
  }
  form.append(head, field, picks, actions, extra);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const name = input.value.replace(/\s+/g, " ").trim();
    if (name) answer(item, face, name);
  });
  dialog.append(form);
  dialog.addEventListener("close", () => {
    dialog.remove();
    dialog = null;
  });
  document.body.append(dialog);
  dialog.showModal();
  input.focus();
  input.select();
}

async function answer(item, face, name) {
  try {
    const done = await fetchJson(`/api/faces/${face.id}/name`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name }),
    });
    toast(t("face_named", { name: done.person_name || name }));
    if (dialog) dialog.close();
    refresh(item);
  } catch (error) {
    toast(error.message, "error");
  }
}

async function moveOut(item, face, name) {
  try {
    await fetchJson(`/api/faces/${face.id}/move`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ person_id: null }),
    });
    toast(t("face_moved_out", { name }));
    if (dialog) dialog.close();
    refresh(item);
  } catch (error) {
    toast(error.message, "error");
  }
}

// The boxes and the side panel's People row, as the change left them (if the same photo is still shown).
function refresh(item) {
  if (!shown || shown.item !== item) return;
  const image = shown.image;
  showFaces(item, image);
  renderDetails(item);
}
