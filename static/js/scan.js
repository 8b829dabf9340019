/* The status line and scan panel: polling /api/status, progress, last and next scan, the scan buttons, the footer. */
import { apiFetch, fetchJson, readJson } from "./api.js";
import { appendFacesStatus } from "./facestatus.js";
import { formatDate, formatDuration, formatNumber } from "./format.js";
import { hasString, t, tCode } from "./i18n.js";
import { renderMessage } from "./results.js";
import { state, VERSION } from "./state.js";
import { appendOcrStatus } from "./textboxes.js";
import { toast } from "./toast.js";

// How long until the next status poll: while a scan runs, when idle, when the tab is hidden, after a failure.
const POLL_SCANNING_MS = 2000;
const POLL_IDLE_MS = 15000;
const POLL_HIDDEN_MS = 60000;
const POLL_FAILED_MS = 5000;
const el = {
  status: document.getElementById("status"),
  text: document.getElementById("status-text"),
  progress: document.getElementById("scan-progress"),
  eta: document.getElementById("scan-eta"),
  info: document.getElementById("scan-info"),
  errors: document.getElementById("errors-button"),
  pause: document.getElementById("pause-button"),
  resume: document.getElementById("resume-button"),
  cancel: document.getElementById("cancel-button"),
  scan: document.getElementById("scan-button"),
  modelNotice: document.getElementById("model-notice"),
  footer: document.getElementById("footer-text"),
};
let statusError = null; // why the last poll failed
let pollTimer = null;
let wasScanning = false; // so the end of a scan is announced once
let polled = () => {}; // told after each status poll

/** `answered()` runs after each status poll (the timeline follows the indexed count). */
export function bindScan(answered) {
  if (answered) polled = answered;
  el.scan.addEventListener("click", startScan);
  el.pause.addEventListener("click", () => controlScan("pause", el.pause, "scan_paused"));
  el.resume.addEventListener("click", () => controlScan("resume", el.resume, "scan_resumed"));
  el.cancel.addEventListener("click", () => controlScan("cancel", el.cancel, "scan_cancelled"));
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) refreshStatus();
  });
}

/** Poll /api/status now (and again later: sooner while a scan runs); announce a scan that just ended. */
export async function refreshStatus() {
  clearTimeout(pollTimer);
  try {
    state.status = await fetchJson("/api/status");
    statusError = null;
  } catch (error) {
    statusError = error.message;
  }
  const scan = state.status && state.status.scan;
  const active = Boolean(scan && scan.state !== "idle"); // scanning or paused
  if (wasScanning && !active && !statusError && scan && scan.last) {
    if (scan.last.error) toast(t("scan_failed", { message: scan.last.error }), "error");
    else toast(t("scan_finished", { summary: scanChanges(scan.last) }));
  }
  if (!statusError) wasScanning = active;
  renderStatus();
  renderMessage();
  polled();
  let delay = active ? POLL_SCANNING_MS : POLL_IDLE_MS;
  if (statusError) delay = POLL_FAILED_MS;
  else if (document.hidden && !active) delay = POLL_HIDDEN_MS;
  pollTimer = setTimeout(refreshStatus, delay);
}

export function renderStatus() {
  const status = state.status;
  el.status.dataset.state = statusError ? "offline" : status ? status.scan.state : "loading";
  if (!status) {
    el.text.textContent = statusError ? t("status_unavailable", { message: statusError }) : t("status_loading");
    for (const node of [el.progress, el.eta, el.info, el.errors, el.pause, el.resume, el.cancel]) node.hidden = true;
    el.footer.textContent = t("footer_plain", { version: VERSION });
    return;
  }
  const counts = status.counts || {};
  const scan = status.scan || {};
  renderStatusLine(counts, scan);
  appendOcrStatus(el.text, status.ocr);
  appendFacesStatus(el.text, status.faces);
  renderScanInfo(scan, status.workers);
  const problems = (counts.errors || 0) + (counts.skipped || 0);
  el.errors.hidden = problems === 0;
  el.errors.textContent = t("errors_link", { n: formatNumber(problems) });
  renderControls(scan);
  el.modelNotice.hidden = !(status.model && status.model.notice);
  el.modelNotice.textContent = status.model && status.model.notice ? status.model.notice : "";
  el.footer.textContent = status.model
    ? t("footer", {
      version: VERSION,
      model: status.model.name,
      device: status.model.device,
      vectors: formatNumber(status.index ? status.index.vectors : 0),
    })
    : t("footer_plain", { version: VERSION });
}

// "36 images indexed · 6 videos · Scanning: indexing 120 / 480", the progress bar, and the rate and time left.
function renderStatusLine(counts, scan) {
  const active = scan.state === "scanning" || scan.state === "paused";
  const one = (key, n) => (n === 1 ? `${key}_one` : key); // English says "1 video", not "1 videos"
  const parts = [t(one("status_indexed", counts.images || 0), { n: formatNumber(counts.images || 0) })];
  if (counts.videos) parts.push(t(one("status_videos", counts.videos), { n: formatNumber(counts.videos) }));
  const progress = scan.progress;
  let eta = "";
  if (active && progress) {
    const phaseKey = `phase_${progress.phase}`;
    const phase = hasString(phaseKey) ? t(phaseKey) : progress.phase; // a phase this page does not know yet
    const paused = scan.state === "paused"; // paused is not scanning: it says where it stopped, not "Scanning"
    if (paused) parts.push(t("status_paused", { reason: pausedReason(scan.paused_reason) }));
    const done = formatNumber(progress.done);
    const total = formatNumber(progress.total);
    if (progress.phase === "walking") {
      const found = formatNumber(progress.found || 0);
      parts.push(t(paused ? "paused_walking_found" : "status_walking_found", { phase, found }));
    } else if (paused) {
      parts.push(progress.total ? t("paused_at_count", { phase, done, total }) : t("paused_at", { phase }));
    } else {
      parts.push(progress.total ? t("status_scanning_count", { phase, done, total }) : t("status_scanning", { phase }));
    }
    el.progress.hidden = !(progress.total > 0) || progress.phase === "walking";
    el.progress.max = Math.max(progress.total, 1);
    el.progress.value = progress.done;
    el.text.title = progress.current || "";
    if (scan.state === "scanning" && progress.rate) {
      eta = t("scan_rate", { rate: formatNumber(Math.round(progress.rate * 10) / 10) });
      if (progress.eta_s != null) eta += ` · ${t("scan_eta", { eta: formatDuration(progress.eta_s) })}`;
    }
  } else {
    el.progress.hidden = true;
    el.text.title = scan.last && scan.last.finished_at ? lastScanText(scan.last) : ""; // in the page's words
    if (counts.pending) parts.push(t("status_pending", { n: formatNumber(counts.pending) }));
  }
  if (statusError) parts.push(t("status_unavailable", { message: statusError }));
  el.text.textContent = parts.join(" · ");
  el.eta.textContent = eta;
  el.eta.hidden = !eta;
}

function pausedReason(reason) {
  if (!reason) return "";
  if (reason === "paused by user") return t("paused_user");
  const window = /^outside scan window (\S+)$/.exec(reason);
  return window ? t("paused_window", { window: window[1] }) : reason; // a reason this page does not know yet
}

// The line under the status: the last scan's changes, when the next one runs, who scans if not this process, and
// the worker processes that embed its files (with MS_DATABASE_URL).
function renderScanInfo(scan, workers) {
  const info = [];
  if (scan.last && scan.last.finished_at) info.push(lastScanText(scan.last));
  if (scan.next_run) info.push(t("next_scan", { when: formatDate(scan.next_run, true) }));
  if (scan.can_scan === false && scan.refusal) info.push(t("scan_elsewhere", { message: scan.refusal }));
  const working = workersText(workers);
  if (working) info.push(working);
  el.info.textContent = info.join(" · ");
  el.info.hidden = info.length === 0;
}

// "Workers: gpu-box ×2 (1,204 files written), desktop (98 files written)": the live worker processes by host.
function workersText(workers) {
  const hosts = new Map();
  for (const worker of workers || []) {
    if (worker.role !== "worker" || !worker.alive) continue; // the owner's own scan is the status line's
    const seen = hosts.get(worker.host) || { processes: 0, files: 0 };
    hosts.set(worker.host, { processes: seen.processes + 1, files: seen.files + worker.files });
  }
  const listed = [...hosts].map(([host, seen]) => {
    const key = seen.processes > 1 ? "scan_worker_host_many" : "scan_worker_host";
    return t(key, { host, n: seen.processes, files: formatNumber(seen.files) });
  });
  return listed.length ? t("scan_workers", { hosts: listed.join(t("scan_worker_separator")) }) : "";
}

// What a scan changed, in the page's words (the server's summary only from a server without stats).
function scanChanges(last) {
  const stats = last.stats;
  if (!stats) return last.summary || "";
  const changes = t("last_scan_changes", {
    added: formatNumber(stats.added || 0),
    updated: formatNumber(stats.updated || 0),
    moved: formatNumber(stats.moved || 0),
    removed: formatNumber(stats.removed || 0),
  });
  return changes + (last.cancelled ? ` (${t("last_scan_cancelled")})` : "");
}

function lastScanText(last) {
  const changes = last.error ? t("scan_failed", { message: last.error }) : scanChanges(last);
  const warnings = (last.warnings || []).map((warning) => {
    const words = tCode(warning.code, warning.message);
    return t("scan_warning", { message: warning.path ? `${words} (${warning.path})` : words });
  });
  return [t("last_scan_info", {
    when: formatDate(last.finished_at, true),
    duration: formatDuration(last.seconds || 0),
    changes,
  }), ...warnings].join(" · ");
}

// Pause while scanning, Resume while paused, Cancel while either; otherwise "Scan now" (if this process may).
function renderControls(scan) {
  const active = scan.state === "scanning" || scan.state === "paused";
  el.pause.hidden = scan.state !== "scanning";
  el.resume.hidden = scan.state !== "paused";
  el.cancel.hidden = !active;
  for (const button of [el.pause, el.resume, el.cancel]) button.disabled = false;
  el.scan.hidden = active;
  el.scan.disabled = active || scan.can_scan === false;
  el.scan.title = scan.can_scan === false && scan.refusal ? scan.refusal : "";
  el.scan.textContent = active ? t("scanning") : t("scan_now");
}

async function startScan() {
  el.scan.disabled = true;
  try {
    const response = await apiFetch("/api/scan", { method: "POST" });
    if (response.status === 202) {
      toast(t("scan_started"));
      wasScanning = true;
    } else if (response.status === 409) {
      let body = {};
      try {
        body = await response.json();
      } catch (_) {
        body = {}; // a 409 without a JSON body still means "already running"
      }
      // Another process owning the data dir is a different conflict from "already running" here.
      const running = body.code === "scan_running" || /already running/.test(body.message || "") || !body.message;
      toast(running ? t("scan_already_running") : tCode(body.code, body.message));
    } else {
      try {
        await readJson(response);
      } catch (error) {
        toast(t("scan_not_started", { message: error.message }), "error");
      }
    }
  } catch (_) {
    toast(t("scan_not_started", { message: t("network_error") }), "error");
  }
  refreshStatus();
}

// Pause, resume or cancel the running scan; the server answers with the new scan status.
async function controlScan(action, button, doneKey) {
  button.disabled = true;
  try {
    await fetchJson(`/api/scan/${action}`, { method: "POST" });
    toast(t(doneKey));
  } catch (error) {
    toast(t("scan_control_failed", { message: error.message }), "error");
  }
  refreshStatus();
}
