/* What the server read in the sentence: a chip per part (× searches without it) and offered parts to accept (✓). */
import { t } from "./i18n.js";
import { state } from "./state.js";

const el = { list: document.getElementById("understood") };
let searchFor = null; // (text): put this sentence in the box and search (the address follows)

/** `search(text)` runs the box's new sentence. */
export function bindUnderstood(search) {
  searchFor = search;
  el.list.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-index]");
    if (!button) return;
    if (button.dataset.typed) {
      // A "-word" the box sent as exclude= itself: the sentence without it.
      const exclude = state.query.exclude.filter((_word, index) => index !== Number(button.dataset.index));
      searchFor(joined(sentence(), exclude));
      return;
    }
    const understood = state.understood;
    const parts = button.dataset.offered ? understood.offered : understood.parts;
    const part = parts[Number(button.dataset.index)];
    if (part) searchFor(button.dataset.offered ? accepted(part) : without(part));
  });
}

// The sentence the server read (the box's words without the -word exclusions, which travel as exclude=).
const sentence = () => (state.query && state.query.q) || "";

function joined(words, exclude) {
  const minus = (exclude || []).map((word) => (/\s/.test(word) ? `-"${word}"` : `-${word}`));
  // A 的 left at an edge by a cut part joined nothing ("没有人的照片" without 没有人: "照片").
  const kept = words.replace(/\s+/g, " ").replace(/^[\s的]+|[\s的]+$/g, "");
  return [kept, ...minus].join(" ").trim();
}

function cut(part, insert) {
  const text = sentence();
  return `${text.slice(0, part.start)} ${insert || ""} ${text.slice(part.end)}`;
}

/** The box's sentence without `part`. */
function without(part) {
  return joined(cut(part), state.query.exclude);
}

/** The box's sentence saying `part` surely: "bus in London", "在北京 烤鸭", "#cat", "-parking sign". */
function accepted(part) {
  const exclude = [...(state.query.exclude || [])];
  let words;
  if (part.field === "place") {
    const rest = cut(part).trim();
    words = /^[\x20-\x7e]+$/.test(part.value) ? `${rest} in ${part.value}` : `在${part.value} ${rest}`;
  } else if (part.field === "tag") words = cut(part, `#${part.value}`);
  else if (part.field === "exclude") {
    words = cut(part);
    exclude.push(part.value);
  } else words = sentence();
  return joined(words, exclude);
}

// "2019-01-01/2019-12-31" → "2019"; a whole month → "2019-03"; one day → itself; else "from – to".
function dates(value) {
  const [from, to] = value.split("/");
  if (!to) return t("understood_since", { date: from });
  if (!from) return t("understood_until", { date: to });
  if (from === to) return from;
  if (from.endsWith("-01-01") && to.endsWith("-12-31") && from.slice(0, 4) === to.slice(0, 4)) return from.slice(0, 4);
  const sameMonth = from.slice(0, 7) === to.slice(0, 7);
  if (sameMonth && from.endsWith("-01") && Number(to.slice(8)) >= 28) return from.slice(0, 7);
  return `${from} – ${to}`;
}

// The chip's words: the field (muted) and its value, e.g. "Place London", "Taken 2019", "“母婴”", "− people".
function label(part) {
  if (part.field === "text") return ["", `“${part.value}”`];
  if (part.field === "exclude") return ["−", part.value];
  if (part.field === "date") return [t("understood_field_date"), dates(part.value)];
  if (part.field === "kind") return [t("understood_field_kind"), t(`understood_kind_${part.value.replace(" ", "_")}`)];
  return [t(`understood_field_${part.field}`), part.value];
}

function chip(part, index, offered, typed) {
  const words = typed ? `-${part.value}` : sentence().slice(part.start, part.end).trim();
  const item = document.createElement("li");
  item.className = offered ? "understood-chip understood-offered" : "understood-chip";
  item.dataset.field = part.field;
  const [field, value] = label(part);
  const text = document.createElement("span");
  text.className = "understood-label";
  if (field) {
    const name = document.createElement("span");
    name.className = "understood-field";
    name.textContent = field;
    text.append(name, " ");
  }
  text.append(offered ? `${value}?` : value);
  text.title = t(`understood_field_${part.field}`) + (words ? ` — “${words}”` : "");
  const button = document.createElement("button");
  button.type = "button";
  button.dataset.index = String(index);
  if (offered) button.dataset.offered = "1";
  if (typed) button.dataset.typed = "1";
  button.className = offered ? "understood-accept" : "understood-remove";
  button.textContent = offered ? "✓" : "×";
  const what = { what: words || part.value };
  const hint = offered ? t(`understood_accept_${part.field}`, what) : t("understood_remove", what);
  button.title = hint;
  button.setAttribute("aria-label", hint);
  item.append(text, button);
  return item;
}

/** Draw the chips of the answer shown (none for the timeline, a stack or "similar to"). */
export function renderUnderstood() {
  const query = state.query;
  const asked = Boolean(query && (query.mode === "text" || query.mode === "image"));
  const understood = asked ? state.understood : null;
  const offered = understood ? understood.offered.filter((part) => part.field !== "date") : [];
  const parts = understood ? understood.parts : [];
  const typed = asked ? (query.exclude || []).map((word) => ({ field: "exclude", value: word, start: 0, end: 0 })) : [];
  el.list.replaceChildren(
    ...parts.map((part, index) => chip(part, index, false, false)),
    ...typed.map((part, index) => chip(part, index, false, true)),
    ...offered.map((part) => chip(part, understood.offered.indexOf(part), true, false)),
  );
  el.list.hidden = el.list.children.length === 0;
  el.list.setAttribute("aria-label", t("understood_title"));
}
