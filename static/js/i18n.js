/* The page's language: which one is chosen (and remembered), looking strings up, and the strings in the HTML. */
import { STRINGS } from "./strings.js";
import { BROWSE_STRINGS } from "./strings-browse.js";
import { CODE_STRINGS } from "./strings-codes.js";
import { PEOPLE_STRINGS } from "./strings-people.js";
import { PLACE_STRINGS } from "./strings-places.js";
import { UNDERSTOOD_STRINGS } from "./strings-understood.js";
import { VIEW_STRINGS } from "./strings-view.js";

// One table per language, from the files that hold the strings by feature.
const TABLES = Object.fromEntries(
  ["en", "zh"].map((language) => [
    language,
    {
      ...STRINGS[language],
      ...BROWSE_STRINGS[language],
      ...CODE_STRINGS[language],
      ...PEOPLE_STRINGS[language],
      ...PLACE_STRINGS[language],
      ...UNDERSTOOD_STRINGS[language],
      ...VIEW_STRINGS[language],
    },
  ]),
);

const LANG_KEY = "materialsearch.lang";
let lang = "en";

/** Add a page's own strings (`{ en: {...}, zh: {...} }`) to the tables. */
export function addStrings(strings) {
  for (const [language, table] of Object.entries(strings)) Object.assign(TABLES[language], table);
}

export const currentLanguage = () => lang;
export const locale = () => (lang === "zh" ? "zh-CN" : "en");
export const hasString = (key) => key in TABLES.en;

/** The string for `key` in the current language (English if it has none), with {name} filled from `params`. */
export function t(key, params) {
  const table = TABLES[lang] || TABLES.en;
  let text = key in table ? table[key] : key in TABLES.en ? TABLES.en[key] : key;
  if (params && typeof text === "string") {
    text = text.replace(/\{(\w+)\}/g, (match, name) => (name in params ? String(params[name]) : match));
  }
  return text;
}

/** The words for a server's stable `code` (an error or a file's problem), else the server's own `message`. */
export function tCode(code, message) {
  return code && hasString(`code_${code}`) ? t(`code_${code}`) : message || "";
}

/** The remembered language, else the browser's. */
export function initialLanguage() {
  let saved = null;
  try {
    saved = window.localStorage.getItem(LANG_KEY);
  } catch (_) {
    saved = null; // storage can be disabled; fall back to the browser's language
  }
  if (saved === "en" || saved === "zh") return saved;
  const preferred = navigator.languages && navigator.languages.length ? navigator.languages[0] : navigator.language;
  return /^zh\b/i.test(preferred || "") ? "zh" : "en";
}

/** Switch to `next` ("en" or "zh") and translate the HTML's own strings; the caller re-renders the rest. */
export function setLanguage(next, remember) {
  lang = next === "zh" ? "zh" : "en";
  if (remember) {
    try {
      window.localStorage.setItem(LANG_KEY, lang);
    } catch (_) {
      /* not remembered; still switched */
    }
  }
  document.documentElement.lang = locale();
  applyStaticStrings();
}

// Elements say which string they show with data-i18n (text), data-i18n-placeholder, -aria-label and -title.
function applyStaticStrings() {
  document.title = t("page_title");
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll("[data-i18n-placeholder]")) {
    node.placeholder = t(node.dataset.i18nPlaceholder);
  }
  for (const node of document.querySelectorAll("[data-i18n-aria-label]")) {
    node.setAttribute("aria-label", t(node.dataset.i18nAriaLabel));
  }
  for (const node of document.querySelectorAll("[data-i18n-title]")) node.title = t(node.dataset.i18nTitle);
  const toggle = document.getElementById("lang-toggle");
  toggle.textContent = t("lang_toggle");
  toggle.setAttribute("aria-label", t("lang_toggle_label"));
  toggle.lang = lang === "zh" ? "en" : "zh-CN";
  toggle.dataset.lang = lang;
}
