/* The person filter: person= in the address (from the People page), a chip per person; it narrows timeline and search. */
import { fetchJson } from "./api.js";
import { t } from "./i18n.js";

const el = { list: document.getElementById("person-filter") };
let people = []; // the ids in the filter, in the address's order
const known = new Map(); // id → the person from /api/people
let onChange = () => {};
let onNamed = () => {};

/** `changed()` runs after a person was dropped from the filter; `named()` once the people's names have arrived
 * (the title names them). */
export function bindPersonFilter(changed, named = () => {}) {
  onChange = changed;
  onNamed = named;
  el.list.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-person]");
    if (!button) return;
    people = people.filter((id) => id !== Number(button.dataset.person));
    renderPersonFilter();
    onChange();
  });
}

/** The person= parameters of the filter (the API and the address use the same name). */
export function appendPersonParams(params) {
  for (const id of people) params.append("person", String(id));
}

/** The people an address names (other values are left out). */
export function setPersonFilter(params) {
  const ids = params.getAll("person").map((value) => Number(value));
  people = [...new Set(ids.filter((id) => Number.isInteger(id) && id > 0))];
  renderPersonFilter();
  if (people.some((id) => !known.has(id))) loadPeople();
}

async function loadPeople() {
  try {
    const body = await fetchJson("/api/people");
    for (const person of body.people) known.set(person.id, person);
  } catch (_) {
    return; // the chips keep saying "Person 3"
  }
  renderPersonFilter();
  onNamed();
}

/** The names of the people in the filter, for the title ("Person 3" until the names have arrived). */
export const activePersonNames = () => people.map(personName);

function personName(id) {
  const person = known.get(id);
  if (!person) return t("person_filter_unknown", { id });
  return person.name || t("face_unnamed_person");
}

/** Draw a chip per person in the filter. */
export function renderPersonFilter() {
  el.list.replaceChildren(
    ...people.map((id) => {
      const item = document.createElement("li");
      item.className = "understood-chip person-chip";
      item.dataset.field = "person-filter";
      const person = known.get(id);
      if (person && person.cover_url) {
        const face = document.createElement("img");
        face.className = "person-chip-face";
        face.src = person.cover_url;
        face.alt = "";
        item.append(face);
      }
      const label = document.createElement("span");
      label.className = "understood-label";
      const field = document.createElement("span");
      field.className = "understood-field";
      field.textContent = t("person_filter_field");
      label.append(field, " ", personName(id));
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "understood-remove";
      remove.dataset.person = String(id);
      remove.textContent = "×";
      const hint = t("person_filter_remove", { name: personName(id) });
      remove.title = hint;
      remove.setAttribute("aria-label", hint);
      item.append(label, remove);
      return item;
    }),
  );
  el.list.hidden = people.length === 0;
}
