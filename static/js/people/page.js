/* The people page: people as face crops with names and counts; name them inline (any language), merge two or more,
 * hide and show them again; a face opens that person's photos on the search page (person= on the timeline). */
import { fetchJson } from "../api.js";
import { formatNumber } from "../format.js";
import { addStrings, currentLanguage, initialLanguage, setLanguage, t } from "../i18n.js";
import { registerServiceWorker } from "../install.js";
import { toast } from "../toast.js";
import { PEOPLE_PAGE_STRINGS } from "./strings.js";

addStrings(PEOPLE_PAGE_STRINGS);
registerServiceWorker();

const view = { people: [], faces: null, loading: true, error: null, selected: new Set() };
const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

const nameOf = (person) => person.name || t("people_this_person");
const photos = (n) => (n === 1 ? t("people_photo") : t("people_photos", { n: formatNumber(n) }));

function personCard(person) {
  const card = element("li", `person${person.hidden ? " is-hidden" : ""}`);
  card.dataset.id = person.id;
  const selected = view.selected.has(person.id);
  card.classList.toggle("is-selected", selected);
  const link = element("a", "person-photo");
  link.href = `/?person=${person.id}`;
  link.setAttribute("aria-label", person.name ? t("people_photos_of", { name: person.name }) : t("people_photos_of_unnamed"));
  link.title = link.getAttribute("aria-label");
  if (person.cover_url) {
    const image = element("img");
    image.src = person.cover_url;
    image.alt = "";
    image.loading = "lazy";
    link.append(image);
  } else {
    link.append(element("span", "person-initial", (person.name || "?").slice(0, 1)));
  }
  const name = element("input", "person-name");
  name.type = "text";
  name.maxLength = 100;
  name.value = person.name || "";
  name.placeholder = t("people_add_name");
  name.setAttribute("aria-label", t("people_name_label"));
  name.autocomplete = "off";
  name.spellcheck = false;
  name.enterKeyHint = "done";
  name.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      name.blur(); // saved on blur
    } else if (event.key === "Escape") {
      name.value = person.name || "";
      name.blur();
    }
  });
  name.addEventListener("blur", () => rename(person, name));
  const count = element("p", "person-count", photos(person.item_count));
  const actions = element("div", "person-actions");
  const select = element("button", "ghost-button small person-select", t(selected ? "people_selected" : "people_select"));
  select.type = "button";
  select.setAttribute("aria-pressed", selected ? "true" : "false");
  select.addEventListener("click", () => {
    if (view.selected.has(person.id)) view.selected.delete(person.id);
    else view.selected.add(person.id);
    render();
  });
  const hide = element("button", "ghost-button small person-hide", t(person.hidden ? "people_unhide" : "people_hide"));
  hide.type = "button";
  hide.addEventListener("click", () => setHidden(person, !person.hidden));
  actions.append(select, hide);
  card.append(link, name, count, actions);
  return card;
}

function summaryText() {
  if (view.error) return t("people_failed", { message: view.error });
  if (view.loading && !view.people.length) return t("people_loading");
  const hidden = view.people.filter((person) => person.hidden).length;
  const counts = {
    people: formatNumber(view.people.length),
    named: formatNumber(view.people.filter((person) => person.name).length),
    hidden: formatNumber(hidden),
  };
  let text = t(hidden ? "people_summary_hidden" : "people_summary", counts);
  const faces = view.faces;
  if (faces && !faces.enabled) text += ` · ${t("people_off")}`;
  else if (faces && faces.progress) {
    const done = { done: formatNumber(faces.progress.done), total: formatNumber(faces.progress.total) };
    text += ` · ${t(faces.state === "paused" ? "people_reading_paused" : "people_reading", done)}`;
  }
  return text;
}

function render() {
  const summary = $("people-summary");
  summary.textContent = summaryText();
  summary.classList.toggle("is-error", Boolean(view.error));
  const lists = { named: $("people-named"), unnamed: $("people-unnamed"), hidden: $("people-hidden") };
  for (const list of Object.values(lists)) list.replaceChildren();
  const known = new Set(view.people.map((person) => person.id));
  for (const id of [...view.selected]) if (!known.has(id)) view.selected.delete(id);
  for (const person of view.people) {
    const list = person.hidden ? lists.hidden : person.name ? lists.named : lists.unnamed;
    list.append(personCard(person));
  }
  const hiddenCount = lists.hidden.children.length;
  const showHidden = $("people-show-hidden");
  showHidden.disabled = hiddenCount === 0;
  if (!hiddenCount) showHidden.checked = false;
  showHidden.parentElement.hidden = hiddenCount === 0;
  $("people-show-hidden-label").textContent = t("people_show_hidden", { n: formatNumber(hiddenCount) });
  $("people-hidden-section").hidden = !showHidden.checked;
  lists.named.parentElement.hidden = lists.named.children.length === 0;
  lists.unnamed.parentElement.hidden = lists.unnamed.children.length === 0;
  const empty = !view.loading && !view.error && view.people.length === 0;
  let none = document.querySelector(".people-empty");
  if (empty && !none) {
    none = element("div", "people-empty");
    none.append(element("h2", null, t("people_none_title")), element("p", null, t("people_none_text")));
    $("people-hidden-section").after(none);
  } else if (!empty && none) none.remove();
  const merge = $("people-merge");
  const picked = view.selected.size;
  merge.textContent = picked ? t("people_merge", { n: formatNumber(picked) }) : t("people_merge_none");
  merge.title = t("people_merge_hint");
  merge.classList.toggle("is-idle", picked < 2); // it still answers: with how to merge
  merge.hidden = view.people.filter((person) => !person.hidden).length < 2;
  $("people-clear").hidden = view.selected.size === 0;
}

async function load() {
  view.loading = true;
  view.error = null;
  render();
  try {
    const [people, status] = await Promise.all([
      fetchJson("/api/people"),
      fetchJson("/api/status").catch(() => null), // the list stands without the pass's progress
    ]);
    view.people = people.people;
    view.faces = status ? status.faces : null;
  } catch (error) {
    view.error = error.message;
  } finally {
    view.loading = false;
    render();
  }
}

async function change(url, method, body) {
  return fetchJson(url, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

async function rename(person, input) {
  const wanted = input.value.replace(/\s+/g, " ").trim();
  if (wanted === (person.name || "")) {
    input.value = person.name || "";
    return;
  }
  try {
    const changed = await change(`/api/people/${person.id}`, "PATCH", { name: wanted });
    toast(changed.name ? t("people_renamed", { name: changed.name }) : t("people_unnamed_now"));
  } catch (error) {
    toast(error.message, "error");
  }
  await load();
}

async function setHidden(person, hidden) {
  try {
    await change(`/api/people/${person.id}`, "PATCH", { hidden });
    toast(t(hidden ? "people_hid" : "people_shown", { name: nameOf(person) }));
  } catch (error) {
    toast(error.message, "error");
  }
  view.selected.delete(person.id);
  await load();
}

// The chosen people become one: the first named one (else the one in most photos) keeps its name and takes the
// others' faces.
async function mergeSelected() {
  const chosen = view.people.filter((person) => view.selected.has(person.id));
  if (chosen.length < 2) {
    toast(t("people_merge_hint")); // how to merge: the button is there before anyone is chosen
    return;
  }
  const into = chosen.find((person) => person.name) || chosen.reduce((a, b) => (b.item_count > a.item_count ? b : a));
  if (!window.confirm(t("people_merge_confirm", { n: chosen.length, name: nameOf(into) }))) return;
  try {
    let merged = into;
    for (const other of chosen) {
      if (other.id !== into.id) merged = await change(`/api/people/${into.id}/merge`, "POST", { person_id: other.id });
    }
    view.selected.clear();
    toast(t("people_merged", { name: nameOf(merged) }));
  } catch (error) {
    toast(error.message, "error");
  }
  await load();
}

function switchLanguage(lang, remember) {
  setLanguage(lang, remember);
  render();
}

$("lang-toggle").addEventListener("click", () => switchLanguage(currentLanguage() === "zh" ? "en" : "zh", true));
$("people-merge").addEventListener("click", mergeSelected);
$("people-clear").addEventListener("click", () => {
  view.selected.clear();
  render();
});
$("people-show-hidden").addEventListener("change", render);
switchLanguage(initialLanguage(), false);
load();
