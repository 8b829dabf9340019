/* The "not indexed" panel (#errors-panel): the files the scan refused or skipped, a page at a time, with why. */
import { fetchJson } from "./api.js";
import { formatBytes, formatNumber } from "./format.js";
import { t, tCode } from "./i18n.js";
import { fromTemplate } from "./template.js";

const ERRORS_PAGE = 100;
const el = {
  open: document.getElementById("errors-button"),
  panel: document.getElementById("errors-panel"),
  close: document.getElementById("errors-close"),
  summary: document.getElementById("errors-summary"),
  list: document.getElementById("errors-list"),
  more: document.getElementById("errors-more"),
};
const errors = { rows: [], total: 0, loading: false, failure: null };

export function bindErrors() {
  el.open.addEventListener("click", () => {
    el.panel.showModal();
    loadErrors(false);
  });
  el.close.addEventListener("click", () => el.panel.close());
  el.more.addEventListener("click", () => loadErrors(true));
  el.panel.addEventListener("click", (event) => {
    if (event.target === el.panel) el.panel.close(); // a click on the backdrop
  });
}

export const errorsAreOpen = () => el.panel.open;

async function loadErrors(append) {
  if (errors.loading) return;
  errors.loading = true;
  errors.failure = null;
  if (!append) {
    errors.rows = [];
    errors.total = 0;
  }
  renderErrors();
  try {
    const data = await fetchJson(`/api/errors?limit=${ERRORS_PAGE}&offset=${errors.rows.length}`);
    errors.rows = errors.rows.concat(data.errors || []);
    errors.total = data.total || 0;
  } catch (error) {
    errors.failure = error.message;
  } finally {
    errors.loading = false;
    renderErrors();
  }
}

export function renderErrors() {
  if (errors.failure) el.summary.textContent = t("errors_failed", { message: errors.failure });
  else if (errors.loading && !errors.rows.length) el.summary.textContent = t("errors_loading");
  else if (!errors.total) el.summary.textContent = t("errors_none");
  else el.summary.textContent = t("errors_summary", { total: formatNumber(errors.total) });
  el.list.replaceChildren(...errors.rows.map(errorRow));
  el.more.hidden = errors.rows.length >= errors.total || Boolean(errors.failure);
  el.more.disabled = errors.loading;
}

function errorRow(row) {
  const li = fromTemplate("error-row");
  li.dataset.status = row.status;
  li.querySelector(".error-badge").textContent = t(row.status === "skipped" ? "status_skipped" : "status_error");
  li.querySelector(".error-name").textContent = row.path.split(/[\\/]/).pop();
  li.querySelector(".error-path").textContent = `${row.path} · ${formatBytes(row.size)}`;
  const reason = tCode(row.error_code, row.reason);
  li.querySelector(".error-reason").textContent = reason;
  const detail = li.querySelector(".error-detail"); // the server's own words, when the code gave other ones
  detail.textContent = row.reason && row.reason !== reason ? row.reason : "";
  detail.hidden = !detail.textContent;
  return li;
}
