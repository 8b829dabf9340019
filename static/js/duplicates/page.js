/* The duplicates review page: groups side by side, keeper marked; hide the others (reversible), export paths. */
import { fetchJson } from "../api.js";
import { DUPLICATE_STRINGS } from "./strings.js";
import { formatBytes, formatDate, formatDuration, formatNumber } from "../format.js";
import { addStrings, currentLanguage, hasString, initialLanguage, setLanguage, t } from "../i18n.js";
import { registerServiceWorker } from "../install.js";
import { toast } from "../toast.js";

addStrings(DUPLICATE_STRINGS);
registerServiceWorker();

const PAGE_SIZE = Number(document.body.dataset.pageSize) || 20;
const view = { groups: [], total: 0, others: 0, compared: 0, loading: false, error: null, kind: "all" };

const $ = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

function memberCard(item, isKeeper) {
  const card = element("figure", `dups-member${isKeeper ? " is-keeper" : ""}${item.hidden ? " is-hidden" : ""}`);
  card.dataset.id = item.id;
  const frame = element("a", "dups-thumb");
  frame.href = item.view_url;
  frame.target = "_blank";
  frame.rel = "noopener";
  const image = element("img");
  image.src = item.thumbnail_url;
  image.alt = item.name;
  image.loading = "lazy";
  frame.append(image);
  if (isKeeper) frame.append(element("span", "dups-badge keeper", t("dups_keeper")));
  if (item.hidden) frame.append(element("span", "dups-badge hidden", t("dups_hidden")));
  const caption = element("figcaption");
  caption.append(element("span", "dups-name", item.name));
  caption.lastChild.title = item.path;
  const facts = [];
  if (item.width && item.height) facts.push(t("dups_size", { w: item.width, h: item.height }));
  facts.push(formatBytes(item.size));
  if (item.duration != null) facts.push(formatDuration(item.duration));
  caption.append(element("span", "dups-facts", facts.join(" · ")));
  caption.append(element("span", "dups-date", formatDate(item.taken_at, true)));
  card.append(frame, caption);
  return card;
}

function groupCard(group, number) {
  const card = element("article", "dups-group");
  card.dataset.keeper = group.keeper;
  const header = element("header", "dups-group-head");
  const title = element("h2", "dups-group-title", t("dups_group", { n: number }));
  const count = element("span", "dups-count", t("dups_members", { n: group.items.length }));
  const why = element("p", "dups-why", t(`why_${group.why}`));
  const detail = `why_detail_${group.why}`;
  why.title = hasString(detail) ? t(detail) : group.why_text; // the server's English for a reason this page lacks
  const others = group.items.slice(1);
  const allHidden = others.length > 0 && others.every((item) => item.hidden);
  const toggle = element("button", "ghost-button small dups-toggle", t(allHidden ? "dups_show_others" : "dups_hide_others"));
  toggle.type = "button";
  toggle.addEventListener("click", () => setHidden(group, !allHidden, toggle));
  const heading = element("div", "dups-heading");
  heading.append(title, count);
  header.append(heading, why, toggle);
  const row = element("div", "dups-row");
  group.items.forEach((item, index) => row.append(memberCard(item, index === 0)));
  card.append(header, row);
  return card;
}

function render() {
  const summary = $("dups-summary");
  const list = $("dups-groups");
  list.replaceChildren();
  if (view.error) {
    summary.textContent = t("dups_failed", { message: view.error });
    summary.classList.add("is-error");
  } else if (view.loading && !view.groups.length) {
    summary.textContent = t("dups_loading");
  } else {
    summary.classList.remove("is-error");
    summary.textContent = t("dups_summary", {
      groups: formatNumber(view.total),
      others: formatNumber(view.others),
      compared: formatNumber(view.compared),
    });
    if (!view.groups.length) {
      const empty = element("div", "dups-empty");
      empty.append(element("h2", null, t("dups_none_title")), element("p", null, t("dups_none_text")));
      list.append(empty);
    }
  }
  view.groups.forEach((group, index) => list.append(groupCard(group, index + 1)));
  const more = $("dups-load-more");
  more.hidden = view.error != null || view.groups.length >= view.total;
  more.disabled = view.loading;
}

async function load(append) {
  view.loading = true;
  view.error = null;
  render();
  const offset = append ? view.groups.length : 0;
  const query = new URLSearchParams({ limit: PAGE_SIZE, offset, kind: view.kind });
  try {
    const body = await fetchJson(`/api/duplicates?${query}`);
    view.groups = append ? view.groups.concat(body.groups) : body.groups;
    Object.assign(view, { total: body.total, others: body.others, compared: body.compared });
  } catch (error) {
    view.error = error.message;
  } finally {
    view.loading = false;
    render();
  }
}

async function setHidden(group, hide, button) {
  const ids = group.ids.slice(1);
  button.disabled = true;
  try {
    const body = await fetchJson(hide ? "/api/hidden" : "/api/hidden/restore", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ ids }),
    });
    const hidden = new Set(body.ids);
    for (const item of group.items) item.hidden = hidden.has(item.id);
    toast(t(hide ? "dups_hid" : "dups_shown", { n: ids.length }));
  } catch (error) {
    toast(error.message, "error");
  } finally {
    render();
  }
}

function switchLanguage(lang, remember) {
  setLanguage(lang, remember);
  render();
}

$("lang-toggle").addEventListener("click", () => switchLanguage(currentLanguage() === "zh" ? "en" : "zh", true));
$("dups-kind").addEventListener("change", (event) => {
  view.kind = event.target.value;
  load(false);
});
$("dups-load-more").addEventListener("click", () => load(true));
switchLanguage(initialLanguage(), false);
load(false);
