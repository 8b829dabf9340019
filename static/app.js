/* materialsearch search page: plain ES2020, no framework, no network beyond this server's REST API. */
"use strict";

(() => {
  // --- every visible string, in both languages -------------------------------------------------------------------
  const I18N = {
    en: {
      page_title: "materialsearch — search your photos",
      tagline: "Search your photos by words or by picture",
      skip_to_search: "Skip to search",
      search_heading: "Search",
      query_label: "Describe the photo you are looking for",
      query_placeholder: "Describe a photo, e.g. “a train at the station” or “海边的日落”",
      search: "Search",
      search_by_image: "Search by image",
      search_by_image_hint: "Search by image — or drop / paste a picture anywhere",
      clear_query_image: "Remove the query image",
      query_image: "Query image",
      similar_chip: "Similar to {name}",
      filters: "Filters",
      filters_active: "{n} active",
      filter_path: "Path contains",
      filter_path_placeholder: "e.g. 2023/Travel",
      filter_date_from: "Taken from",
      filter_date_to: "Taken until",
      filter_kind: "Type",
      kind_all: "All",
      kind_image: "Images",
      kind_video: "Videos",
      filter_min_score: "Minimum score",
      reset_filters: "Reset filters",
      results_for_text: "Results for “{q}”",
      results_for_image: "Results for your picture",
      results_for_image_text: "Results for your picture + “{q}”",
      results_similar: "Similar to {name}",
      results_count: "{shown} of {total}",
      took: "{ms} ms",
      load_more: "Load more",
      loading_more: "Loading…",
      similar: "Similar",
      find_similar: "Find similar",
      similar_title: "Find photos similar to {name}",
      open_item: "Open {name}",
      score_title: "Similarity score (cosine, from −1 to 1)",
      video_badge: "Video",
      live_badge: "LIVE",
      motion_badge: "Motion",
      play_live: "Play motion",
      download_clip: "Download clip",
      detail_moment: "Moment",
      detail_duration: "Duration",
      preparing_video: "Making a version your browser can play… showing the matching moment meanwhile.",
      no_date: "No date",
      welcome_title: "Find any photo in your library",
      welcome_text:
        "Describe what you are looking for in Chinese or English, or drop, paste or choose a picture to find similar ones.",
      empty_index_title: "Nothing is indexed yet",
      empty_index_text: "Click “Scan now” to index your library. Results appear as soon as the scan finishes.",
      searching: "Searching…",
      no_results_title: "No matches",
      no_results_text: "Try other words, another picture, or loosen the filters.",
      search_failed: "The search failed",
      need_query: "Type some words or add a picture first.",
      network_error: "Cannot reach the server. Is materialsearch still running?",
      http_error: "The server answered {status}.",
      not_an_image: "“{name}” does not look like an image.",
      too_large: "“{name}” is too large ({size}; the limit is {max}).",
      drop_here: "Drop a picture to search with it",
      status_loading: "Loading status…",
      status_unavailable: "Status unavailable: {message}",
      status_indexed: "{n} images indexed",
      status_videos: "{n} videos",
      status_pending: "{n} waiting",
      status_scanning: "Scanning: {phase}",
      status_scanning_count: "Scanning: {phase} {done} / {total}",
      phase_starting: "starting",
      phase_walking: "looking for files",
      "phase_matching moved files": "matching moved files",
      phase_removing: "removing deleted files",
      phase_embedding: "indexing",
      phase_done: "finishing",
      phase_saving: "saving the index",
      status_walking_found: "Scanning: {phase} ({found} found)",
      status_paused: "Paused: {reason}",
      paused_user: "paused by you",
      paused_window: "outside the scan window {window}",
      scan_rate: "{rate}/s",
      scan_eta: "about {eta} left",
      pause_scan: "Pause",
      resume_scan: "Resume",
      cancel_scan: "Cancel",
      scan_paused: "Scan paused after the current batch.",
      scan_resumed: "Scan resumed.",
      scan_cancelled: "Scan stopping after the current batch; what is indexed so far is kept.",
      scan_control_failed: "Could not do that: {message}",
      last_scan_info: "Last scan {when}, took {duration}: {changes}",
      last_scan_changes: "{added} added, {updated} updated, {moved} moved, {removed} removed",
      last_scan_cancelled: "cancelled",
      next_scan: "next scan {when}",
      scan_elsewhere: "Scanning is done by another process: {message}",
      duration_units: ["h", "min", "s"],
      errors_link: "{n} not indexed",
      scan_now: "Scan now",
      scanning: "Scanning…",
      scan_started: "Scan started.",
      scan_already_running: "A scan is already running — its progress is shown above.",
      scan_not_started: "Could not start a scan: {message}",
      scan_finished: "Scan finished: {summary}",
      scan_failed: "The scan failed: {message}",
      errors_title: "Files that were not indexed",
      errors_summary: "{total} files could not be indexed or were skipped.",
      errors_none: "No problems: every file was indexed.",
      errors_loading: "Loading…",
      errors_failed: "Could not load the list: {message}",
      status_error: "error",
      status_skipped: "skipped",
      close: "Close",
      previous: "Previous (←)",
      next: "Next (→)",
      open_original: "Open original",
      detail_path: "Path",
      detail_date: "Taken",
      detail_size: "File size",
      detail_dimensions: "Dimensions",
      detail_score: "Score",
      detail_kind: "Type",
      position: "{n} of {total}",
      footer: "materialsearch {version} · model {model} on {device} · {vectors} vectors",
      footer_plain: "materialsearch {version}",
      lang_toggle: "中文",
      lang_toggle_label: "切换到中文 (Switch to Chinese)",
      logout: "Log out",
      bytes: ["B", "KB", "MB", "GB"],
    },
    zh: {
      page_title: "materialsearch — 搜索你的照片",
      tagline: "用文字或图片搜索你的照片",
      skip_to_search: "跳到搜索框",
      search_heading: "搜索",
      query_label: "描述你要找的照片",
      query_placeholder: "描述一张照片，例如“车站里的火车”或 “sunset at the beach”",
      search: "搜索",
      search_by_image: "以图搜图",
      search_by_image_hint: "以图搜图 —— 也可以把图片拖到页面上或直接粘贴",
      clear_query_image: "移除查询图片",
      query_image: "查询图片",
      similar_chip: "与 {name} 相似",
      filters: "筛选",
      filters_active: "{n} 项生效",
      filter_path: "路径包含",
      filter_path_placeholder: "例如 2023/旅行",
      filter_date_from: "拍摄日期从",
      filter_date_to: "拍摄日期至",
      filter_kind: "类型",
      kind_all: "全部",
      kind_image: "图片",
      kind_video: "视频",
      filter_min_score: "最低相似度",
      reset_filters: "重置筛选",
      results_for_text: "“{q}”的搜索结果",
      results_for_image: "以图搜图的结果",
      results_for_image_text: "图片 + “{q}”的搜索结果",
      results_similar: "与 {name} 相似",
      results_count: "已显示 {shown} / 共 {total} 项",
      took: "{ms} 毫秒",
      load_more: "加载更多",
      loading_more: "加载中…",
      similar: "相似",
      find_similar: "查找相似",
      similar_title: "查找与 {name} 相似的照片",
      open_item: "打开 {name}",
      score_title: "相似度（余弦相似度，−1 到 1）",
      video_badge: "视频",
      live_badge: "实况",
      motion_badge: "动态",
      play_live: "播放动态",
      download_clip: "下载片段",
      detail_moment: "片段",
      detail_duration: "时长",
      preparing_video: "正在生成浏览器可播放的版本…… 先播放匹配的片段。",
      no_date: "无日期",
      welcome_title: "在图库中找到任何一张照片",
      welcome_text: "用中文或英文描述你想找的照片，或者拖入、粘贴、选择一张图片来查找相似的照片。",
      empty_index_title: "还没有索引任何照片",
      empty_index_text: "点击“立即扫描”为你的图库建立索引，扫描完成后即可搜索。",
      searching: "正在搜索…",
      no_results_title: "没有找到匹配的照片",
      no_results_text: "换个描述、换一张图片，或放宽筛选条件试试。",
      search_failed: "搜索失败",
      need_query: "请先输入文字或添加一张图片。",
      network_error: "无法连接服务器，materialsearch 还在运行吗？",
      http_error: "服务器返回了 {status}。",
      not_an_image: "“{name}”看起来不是图片。",
      too_large: "“{name}”太大了（{size}，上限为 {max}）。",
      drop_here: "松开鼠标，用这张图片搜索",
      status_loading: "正在读取状态…",
      status_unavailable: "无法获取状态：{message}",
      status_indexed: "已索引 {n} 张图片",
      status_videos: "{n} 个视频",
      status_pending: "{n} 个等待中",
      status_scanning: "正在扫描：{phase}",
      status_scanning_count: "正在扫描：{phase} {done} / {total}",
      phase_starting: "正在开始",
      phase_walking: "查找文件",
      "phase_matching moved files": "匹配移动过的文件",
      phase_removing: "移除已删除的文件",
      phase_embedding: "建立索引",
      phase_done: "即将完成",
      phase_saving: "保存索引",
      status_walking_found: "正在扫描：{phase}（已找到 {found} 个）",
      status_paused: "已暂停：{reason}",
      paused_user: "由你暂停",
      paused_window: "不在扫描时段 {window} 内",
      scan_rate: "{rate} 个/秒",
      scan_eta: "约剩 {eta}",
      pause_scan: "暂停",
      resume_scan: "继续",
      cancel_scan: "取消",
      scan_paused: "当前批次完成后暂停扫描。",
      scan_resumed: "已继续扫描。",
      scan_cancelled: "当前批次完成后停止扫描，已索引的内容会保留。",
      scan_control_failed: "操作失败：{message}",
      last_scan_info: "上次扫描 {when}，用时 {duration}：{changes}",
      last_scan_changes: "新增 {added}，更新 {updated}，移动 {moved}，移除 {removed}",
      last_scan_cancelled: "已取消",
      next_scan: "下次扫描 {when}",
      scan_elsewhere: "扫描由另一个进程负责：{message}",
      duration_units: ["小时", "分", "秒"],
      errors_link: "{n} 个未索引",
      scan_now: "立即扫描",
      scanning: "扫描中…",
      scan_started: "已开始扫描。",
      scan_already_running: "已有扫描正在进行，进度显示在上方。",
      scan_not_started: "无法开始扫描：{message}",
      scan_finished: "扫描完成：{summary}",
      scan_failed: "扫描失败：{message}",
      errors_title: "未能索引的文件",
      errors_summary: "共有 {total} 个文件无法索引或被跳过。",
      errors_none: "没有问题：所有文件都已索引。",
      errors_loading: "加载中…",
      errors_failed: "无法加载列表：{message}",
      status_error: "错误",
      status_skipped: "已跳过",
      close: "关闭",
      previous: "上一张 (←)",
      next: "下一张 (→)",
      open_original: "打开原图",
      detail_path: "路径",
      detail_date: "拍摄时间",
      detail_size: "文件大小",
      detail_dimensions: "尺寸",
      detail_score: "相似度",
      detail_kind: "类型",
      position: "第 {n} 张，共 {total} 张",
      footer: "materialsearch {version} · 模型 {model}（{device}）· {vectors} 个向量",
      footer_plain: "materialsearch {version}",
      lang_toggle: "English",
      lang_toggle_label: "Switch to English（切换到英文）",
      logout: "退出登录",
      bytes: ["B", "KB", "MB", "GB"],
    },
  };

  const LANG_KEY = "materialsearch.lang";
  const IMAGE_EXTENSIONS = /\.(jpe?g|png|webp|gif|bmp|tiff?|heic|heif|avif)$/i;
  const POLL_SCANNING_MS = 2000;
  const POLL_IDLE_MS = 15000;
  const POLL_HIDDEN_MS = 60000;
  const POLL_FAILED_MS = 5000;
  const ERRORS_PAGE = 100;

  const $ = (id) => document.getElementById(id);
  const el = {
    query: $("query"),
    form: $("search-form"),
    searchButton: $("search-button"),
    imageButton: $("image-button"),
    imageInput: $("image-input"),
    chip: $("query-chip"),
    chipImage: $("query-chip-image"),
    chipLabel: $("query-chip-label"),
    clearImage: $("clear-image"),
    filters: $("filters"),
    filtersActive: $("filters-active"),
    filterPath: $("filter-path"),
    filterFrom: $("filter-date-from"),
    filterTo: $("filter-date-to"),
    filterKind: $("filter-kind"),
    filterMinScore: $("filter-min-score"),
    resetFilters: $("reset-filters"),
    status: $("status"),
    statusDot: $("status-dot"),
    statusText: $("status-text"),
    scanProgress: $("scan-progress"),
    scanButton: $("scan-button"),
    scanEta: $("scan-eta"),
    scanInfo: $("scan-info"),
    pauseButton: $("pause-button"),
    resumeButton: $("resume-button"),
    cancelButton: $("cancel-button"),
    errorsButton: $("errors-button"),
    modelNotice: $("model-notice"),
    resultsTitle: $("results-heading"),
    resultsCount: $("results-count"),
    message: $("message"),
    messageTitle: $("message-title"),
    messageText: $("message-text"),
    results: $("results"),
    loadMore: $("load-more"),
    footer: $("footer-text"),
    dropOverlay: $("drop-overlay"),
    viewer: $("viewer"),
    viewerImage: $("viewer-image"),
    viewerVideo: $("viewer-video"),
    viewerTitle: $("viewer-title"),
    viewerDetails: $("viewer-details"),
    viewerOriginal: $("viewer-original"),
    viewerClip: $("viewer-clip"),
    viewerLive: $("viewer-live"),
    viewerNote: $("viewer-note"),
    viewerSimilar: $("viewer-similar"),
    viewerPosition: $("viewer-position"),
    viewerPrev: $("viewer-prev"),
    viewerNext: $("viewer-next"),
    viewerClose: $("viewer-close"),
    errorsPanel: $("errors-panel"),
    errorsClose: $("errors-close"),
    errorsSummary: $("errors-summary"),
    errorsList: $("errors-list"),
    errorsMore: $("errors-more"),
    langToggle: $("lang-toggle"),
    toast: $("toast"),
  };

  const PAGE_SIZE = parseInt(document.body.dataset.pageSize, 10) || 40;
  const MAX_UPLOAD = parseInt(document.body.dataset.maxUpload, 10) || 0;
  const VERSION = document.body.dataset.version || "";

  const state = {
    lang: "en",
    // The current query: {mode: "text", q} | {mode: "image", file, q} | {mode: "like", like: {id, name, thumb}}
    query: null,
    imageFile: null,
    imageUrl: null,
    like: null,
    results: [],
    total: 0,
    tookMs: null,
    loading: false,
    appending: false,
    error: null,
    seq: 0,
    controller: null,
    status: null,
    statusError: null,
    pollTimer: null,
    wasScanning: false,
    viewerIndex: -1,
    viewerToken: 0,
    errorRows: [],
    errorTotal: 0,
    errorsLoading: false,
    errorsError: null,
  };

  // --- i18n -----------------------------------------------------------------------------------------------------
  function t(key, params) {
    const table = I18N[state.lang] || I18N.en;
    let text = key in table ? table[key] : key in I18N.en ? I18N.en[key] : key;
    if (params && typeof text === "string") {
      text = text.replace(/\{(\w+)\}/g, (match, name) => (name in params ? String(params[name]) : match));
    }
    return text;
  }

  function initialLanguage() {
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

  function setLanguage(lang, remember) {
    state.lang = lang === "zh" ? "zh" : "en";
    if (remember) {
      try {
        window.localStorage.setItem(LANG_KEY, state.lang);
      } catch (_) {
        /* not remembered; still switched */
      }
    }
    document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
    applyStaticStrings();
    renderAll();
  }

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
    el.langToggle.textContent = t("lang_toggle");
    el.langToggle.setAttribute("aria-label", t("lang_toggle_label"));
    el.langToggle.lang = state.lang === "zh" ? "en" : "zh-CN";
    el.langToggle.dataset.lang = state.lang;
  }

  // --- formatting -----------------------------------------------------------------------------------------------
  const locale = () => (state.lang === "zh" ? "zh-CN" : "en");

  function parseDate(iso) {
    if (!iso) return null;
    const date = new Date(iso); // no offset in the string: read as the camera's wall-clock time
    return Number.isNaN(date.getTime()) ? null : date;
  }

  function formatDate(iso, withTime) {
    const date = parseDate(iso);
    if (!date) return t("no_date");
    const options = { year: "numeric", month: "short", day: "numeric" };
    if (withTime) Object.assign(options, { hour: "2-digit", minute: "2-digit" });
    return new Intl.DateTimeFormat(locale(), options).format(date);
  }

  function formatNumber(value) {
    return new Intl.NumberFormat(locale()).format(value);
  }

  // 3725 → "1 h 2 min", 75 → "1 min 15 s", 8 → "8 s" (two units at most).
  function formatDuration(seconds) {
    const [h, m, s] = t("duration_units");
    const total = Math.max(0, Math.round(seconds));
    const parts = [[Math.floor(total / 3600), h], [Math.floor((total % 3600) / 60), m], [total % 60, s]];
    const first = parts.findIndex(([value]) => value > 0);
    if (first < 0) return `0 ${s}`;
    return parts.slice(first, first + 2).filter(([value]) => value > 0).map(([value, unit]) => `${value} ${unit}`)
      .join(" ");
  }

  function formatBytes(bytes) {
    if (bytes == null || Number.isNaN(bytes)) return "—";
    const units = t("bytes");
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    const digits = unit === 0 || value >= 100 ? 0 : 1;
    return `${new Intl.NumberFormat(locale(), { maximumFractionDigits: digits }).format(value)} ${units[unit]}`;
  }

  const formatScore = (score) => (typeof score === "number" ? score.toFixed(3) : "—");

  // 75.3 → "1:15"; 3725 → "1:02:05"
  function formatClock(seconds) {
    const whole = Math.max(0, Math.floor(seconds || 0));
    const h = Math.floor(whole / 3600);
    const m = Math.floor((whole % 3600) / 60);
    const sec = String(whole % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
  }

  const indexedCount = (counts) => (counts.images || 0) + (counts.videos || 0);
  const isMoment = (item) => item.kind === "video" && typeof item.start === "number";
  // A video can match at several moments: a result is an item plus, for videos, where it matched.
  const resultKey = (item) => (isMoment(item) ? `${item.id}@${item.start}` : String(item.id));

  // --- HTTP -----------------------------------------------------------------------------------------------------
  class ApiError extends Error {
    constructor(message, status) {
      super(message);
      this.status = status;
    }
  }

  async function readJson(response) {
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) {
      const message = data && (data.message || data.error);
      throw new ApiError(message || t("http_error", { status: `${response.status} ${response.statusText}`.trim() }),
        response.status);
    }
    if (data === null) throw new ApiError(t("http_error", { status: response.status }), response.status);
    return data;
  }

  // When login is on, the page carries a CSRF token that state-changing API calls must echo in a header.
  const CSRF_TOKEN = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // fetch() for this server's API: adds the CSRF header, and sends the browser to the login page when the
  // session has expired (401), coming back to this page afterwards.
  async function apiFetch(url, options = {}) {
    const method = (options.method || "GET").toUpperCase();
    const headers = new Headers(options.headers || {});
    if (CSRF_TOKEN && method !== "GET" && method !== "HEAD") headers.set("X-CSRF-Token", CSRF_TOKEN);
    const response = await fetch(url, { ...options, headers, credentials: "same-origin" });
    if (response.status === 401) {
      const here = window.location.pathname + window.location.search;
      window.location.assign(`/login?next=${encodeURIComponent(here)}`);
    }
    return response;
  }

  async function fetchJson(url, options) {
    let response;
    try {
      response = await apiFetch(url, options);
    } catch (error) {
      if (error && error.name === "AbortError") throw error;
      throw new ApiError(t("network_error"), 0);
    }
    return readJson(response);
  }

  // --- toast ----------------------------------------------------------------------------------------------------
  let toastTimer = null;
  function toast(message, kind) {
    el.toast.textContent = message;
    el.toast.dataset.kind = kind || "info";
    el.toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => {
      el.toast.hidden = true;
    }, 5000);
  }

  // --- filters --------------------------------------------------------------------------------------------------
  function filterParams() {
    const params = new URLSearchParams();
    const path = el.filterPath.value.trim();
    if (path) params.set("path", path);
    if (el.filterFrom.value) params.set("date_from", el.filterFrom.value);
    if (el.filterTo.value) params.set("date_to", el.filterTo.value);
    if (el.filterKind.value && el.filterKind.value !== "all") params.set("kind", el.filterKind.value);
    const minScore = el.filterMinScore.value.trim();
    if (minScore) params.set("min_score", minScore);
    return params;
  }

  function renderFilterBadge() {
    const count = [...filterParams().keys()].length;
    el.filtersActive.hidden = count === 0;
    el.filtersActive.textContent = count ? t("filters_active", { n: count }) : "";
  }

  function onFiltersChanged() {
    renderFilterBadge();
    if (state.query) runSearch(false);
  }

  // --- search ---------------------------------------------------------------------------------------------------
  function currentQueryFromInputs() {
    const q = el.query.value.trim();
    if (state.imageFile) return { mode: "image", file: state.imageFile, q };
    if (state.like && !q) return { mode: "like", like: state.like };
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
    if (query.mode === "text" && state.like) clearQueryImage(false);
    state.query = query;
    runSearch(false);
  }

  async function runSearch(append) {
    const query = state.query;
    if (!query) return;
    if (state.controller) state.controller.abort();
    const controller = new AbortController();
    state.controller = controller;
    const seq = ++state.seq;
    const offset = append ? state.results.length : 0;
    state.loading = true;
    state.appending = append;
    state.error = null;
    renderResults(false);
    updateLocation(query);

    const params = filterParams();
    params.set("limit", String(PAGE_SIZE));
    params.set("offset", String(offset));
    try {
      let data;
      if (query.mode === "image") {
        const form = new FormData();
        form.append("image", query.file, query.file.name || "query-image");
        if (query.q) form.append("q", query.q);
        for (const [key, value] of params) form.append(key, value);
        data = await fetchJson("/api/search", { method: "POST", body: form, signal: controller.signal });
      } else {
        if (query.mode === "like") {
          params.set("like", String(query.like.id));
          if (query.like.t != null) params.set("t", String(query.like.t));
        } else params.set("q", query.q);
        data = await fetchJson(`/api/search?${params}`, { signal: controller.signal });
      }
      if (seq !== state.seq) return;
      const incoming = data.results || [];
      state.loading = false;
      state.tookMs = data.took_ms;
      if (append) {
        const known = new Set(state.results.map(resultKey));
        const start = state.results.length;
        state.results = state.results.concat(incoming.filter((item) => !known.has(resultKey(item))));
        state.total = Math.max(data.total || 0, state.results.length);
        renderResults(false, start);
      } else {
        state.results = incoming;
        state.total = Math.max(data.total || 0, incoming.length);
        state.viewerIndex = -1;
        renderResults(true);
        window.scrollTo({ top: 0 });
      }
    } catch (error) {
      if (error && error.name === "AbortError") return;
      if (seq !== state.seq) return;
      state.loading = false;
      state.error = error && error.message ? error.message : String(error);
      if (!append) {
        state.results = [];
        state.total = 0;
        state.tookMs = null;
      }
      renderResults(!append);
    } finally {
      if (seq === state.seq) {
        state.loading = false;
        state.controller = null;
        renderResults(false);
      }
    }
  }

  function updateLocation(query) {
    const params = new URLSearchParams();
    if (query && query.mode === "text") params.set("q", query.q);
    if (query && query.mode === "like") params.set("like", String(query.like.id));
    const search = params.toString();
    const url = `${window.location.pathname}${search ? `?${search}` : ""}`;
    if (url !== `${window.location.pathname}${window.location.search}`) window.history.replaceState(null, "", url);
  }

  // --- the query image / "similar to" chip ----------------------------------------------------------------------
  function looksLikeImage(file) {
    return (file.type && file.type.startsWith("image/")) || IMAGE_EXTENSIONS.test(file.name || "");
  }

  function setQueryImage(file) {
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
    state.imageFile = file;
    state.like = null;
    state.imageUrl = URL.createObjectURL(file);
    renderChip();
    state.query = { mode: "image", file, q: el.query.value.trim() };
    runSearch(false);
  }

  function releaseImageUrl() {
    if (state.imageUrl) URL.revokeObjectURL(state.imageUrl);
    state.imageUrl = null;
  }

  function clearQueryImage(rerun) {
    releaseImageUrl();
    state.imageFile = null;
    state.like = null;
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

  function startLike(item) {
    releaseImageUrl();
    state.imageFile = null;
    el.imageInput.value = "";
    // For a video moment, "similar" means similar to the matched frame.
    const t = isMoment(item) ? Math.round(item.time * 1000) : null;
    state.like = { id: item.id, name: item.name, thumb: item.thumbnail_url, t };
    el.query.value = "";
    renderChip();
    state.query = { mode: "like", like: state.like };
    runSearch(false);
    window.scrollTo({ top: 0, behavior: "smooth" });
  }

  function resetResults() {
    if (state.controller) state.controller.abort();
    state.seq += 1;
    state.query = null;
    state.results = [];
    state.total = 0;
    state.loading = false;
    state.error = null;
    updateLocation(null);
    renderResults(true);
  }

  function renderChip() {
    const active = Boolean(state.imageFile || state.like);
    el.chip.hidden = !active;
    el.form.classList.toggle("has-chip", active);
    if (!active) {
      el.chipImage.removeAttribute("src");
      el.chipLabel.textContent = "";
      return;
    }
    el.chip.classList.remove("chip-broken");
    if (state.imageFile) {
      el.chipImage.src = state.imageUrl;
      el.chipImage.alt = t("query_image");
      el.chipLabel.textContent = state.imageFile.name || t("query_image");
      el.chip.title = state.imageFile.name || "";
    } else {
      el.chipImage.src = state.like.thumb;
      el.chipImage.alt = state.like.name;
      el.chipLabel.textContent = t("similar_chip", { name: state.like.name });
      el.chip.title = state.like.name;
    }
  }

  // --- results --------------------------------------------------------------------------------------------------
  function resultsTitle(query) {
    if (!query) return "";
    if (query.mode === "text") return t("results_for_text", { q: query.q });
    if (query.mode === "like") return t("results_similar", { name: query.like.name });
    return query.q ? t("results_for_image_text", { q: query.q }) : t("results_for_image");
  }

  function showMessage(title, text, kind) {
    el.message.hidden = false;
    el.message.dataset.kind = kind || "info";
    el.messageTitle.textContent = title;
    el.messageText.textContent = text || "";
    el.messageText.hidden = !text;
  }

  function renderMessage() {
    const counts = state.status && state.status.counts;
    const scanning = state.status && state.status.scan && state.status.scan.state !== "idle"; // or paused
    if (state.error) {
      showMessage(t("search_failed"), state.error, "error");
    } else if (!state.query) {
      if (counts && indexedCount(counts) === 0 && !scanning) showMessage(t("empty_index_title"), t("empty_index_text"));
      else showMessage(t("welcome_title"), t("welcome_text"), "welcome");
    } else if (state.loading && state.results.length === 0) {
      showMessage(t("searching"), "", "loading");
    } else if (!state.loading && state.results.length === 0) {
      if (counts && indexedCount(counts) === 0) showMessage(t("empty_index_title"), t("empty_index_text"));
      else showMessage(t("no_results_title"), t("no_results_text"));
    } else {
      el.message.hidden = true;
    }
  }

  function renderCount() {
    if (!state.query || (state.results.length === 0 && (state.loading || state.error))) {
      el.resultsCount.textContent = "";
      return;
    }
    let text = t("results_count", {
      shown: formatNumber(state.results.length),
      total: formatNumber(state.total),
    });
    if (state.tookMs != null) text += ` · ${t("took", { ms: formatNumber(Math.round(state.tookMs)) })}`;
    el.resultsCount.textContent = text;
  }

  function renderLoadMore() {
    const more = Boolean(state.query) && !state.error && state.results.length < state.total;
    el.loadMore.hidden = !more;
    el.loadMore.disabled = state.loading;
    el.loadMore.textContent = state.loading && state.appending ? t("loading_more") : t("load_more");
  }

  // clear: rebuild every card; fromIndex: append the cards from there on; neither: cards stay as they are.
  function renderResults(clear, fromIndex) {
    el.resultsTitle.textContent = resultsTitle(state.query);
    el.results.setAttribute("aria-busy", state.loading ? "true" : "false");
    el.results.classList.toggle("is-stale", state.loading && !state.appending);
    let start = null;
    if (clear) {
      el.results.replaceChildren();
      start = 0;
    } else if (typeof fromIndex === "number") {
      start = fromIndex;
    }
    if (start !== null) {
      const fragment = document.createDocumentFragment();
      for (let i = start; i < state.results.length; i += 1) fragment.append(resultCard(state.results[i], i));
      el.results.append(fragment);
    }
    renderMessage();
    renderCount();
    renderLoadMore();
  }

  function resultCard(item, index) {
    const li = document.createElement("li");
    li.className = "result";
    li.dataset.id = String(item.id);
    li.dataset.key = resultKey(item);
    li.dataset.index = String(index);
    li.dataset.name = item.name;
    li.dataset.kind = item.kind;

    const open = document.createElement("button");
    open.type = "button";
    open.className = "result-open";
    open.setAttribute("aria-label", t("open_item", { name: item.name }));
    open.addEventListener("click", () => openViewer(index));

    const img = document.createElement("img");
    img.className = "result-thumb";
    img.loading = "lazy";
    img.decoding = "async";
    img.alt = item.name;
    img.src = item.thumbnail_url;
    img.addEventListener("error", () => li.classList.add("thumb-broken"), { once: true });
    open.append(img);

    const score = document.createElement("span");
    score.className = "result-score";
    score.title = t("score_title");
    score.textContent = formatScore(item.score);
    open.append(score);

    if (item.kind === "video") {
      const badge = document.createElement("span");
      badge.className = "result-badge";
      badge.textContent = isMoment(item)
        ? `${t("video_badge")} ${formatClock(item.start)}–${formatClock(item.end)}`
        : t("video_badge");
      if (isMoment(item)) badge.classList.add("result-moment");
      open.append(badge);
    } else if (item.motion_url) {
      const badge = document.createElement("span");
      badge.className = "result-badge result-live";
      badge.textContent = item.live ? t("live_badge") : t("motion_badge");
      open.append(badge);
      // Like Photos.app: the motion plays while the pointer rests on the picture.
      let motion = null;
      open.addEventListener("mouseenter", () => {
        if (motion) return;
        motion = document.createElement("video");
        motion.className = "result-motion";
        motion.muted = true;
        motion.loop = true;
        motion.playsInline = true;
        motion.autoplay = true;
        motion.src = item.motion_url;
        open.append(motion);
      });
      open.addEventListener("mouseleave", () => {
        if (!motion) return;
        motion.pause();
        motion.remove();
        motion = null;
      });
    }

    const meta = document.createElement("div");
    meta.className = "result-meta";
    const name = document.createElement("p");
    name.className = "result-name";
    name.title = item.path;
    name.textContent = item.name;
    const date = document.createElement("time");
    date.className = "result-date";
    if (item.taken_at) date.dateTime = item.taken_at;
    date.textContent = formatDate(item.taken_at, false);
    const row = document.createElement("div");
    row.className = "result-row";

    const similar = document.createElement("button");
    similar.type = "button";
    similar.className = "result-similar";
    similar.textContent = t("similar");
    similar.title = t("similar_title", { name: item.name });
    similar.setAttribute("aria-label", t("similar_title", { name: item.name }));
    similar.addEventListener("click", () => startLike(item));

    row.append(date, similar);
    meta.append(name, row);
    li.append(open, meta);
    return li;
  }

  // --- large view -----------------------------------------------------------------------------------------------
  function detailRow(label, value) {
    const dt = document.createElement("dt");
    dt.textContent = label;
    const dd = document.createElement("dd");
    dd.textContent = value;
    el.viewerDetails.append(dt, dd);
    return dd;
  }

  function renderViewer() {
    const item = state.results[state.viewerIndex];
    if (!item) return;
    el.viewerTitle.textContent = item.name;
    const isVideo = item.kind === "video";
    el.viewerVideo.hidden = !isVideo;
    el.viewerImage.hidden = isVideo;
    el.viewerNote.hidden = true;
    el.viewerLive.hidden = isVideo || !item.motion_url;
    el.viewerClip.hidden = !isMoment(item);
    if (isMoment(item)) {
      el.viewerClip.href = item.clip_url;
      el.viewerClip.setAttribute("download", "");
    }
    state.viewerToken += 1;
    if (isVideo) {
      el.viewerImage.removeAttribute("src");
      el.viewerVideo.poster = item.thumbnail_url;
      playVideo(item, state.viewerToken);
    } else {
      el.viewerVideo.pause();
      el.viewerVideo.removeAttribute("src");
      el.viewerImage.classList.add("is-loading");
      el.viewerImage.alt = item.name;
      el.viewerImage.src = item.view_url;
    }
    el.viewerDetails.replaceChildren();
    const path = detailRow(t("detail_path"), item.path);
    path.className = "detail-path";
    detailRow(t("detail_date"), formatDate(item.taken_at, true));
    detailRow(t("detail_size"), formatBytes(item.size));
    if (item.width && item.height) detailRow(t("detail_dimensions"), `${item.width} × ${item.height}`);
    detailRow(t("detail_score"), formatScore(item.score));
    if (isVideo) detailRow(t("detail_kind"), t("kind_video"));
    if (isVideo && typeof item.duration === "number") detailRow(t("detail_duration"), formatClock(item.duration));
    if (isMoment(item)) detailRow(t("detail_moment"), `${formatClock(item.start)}–${formatClock(item.end)}`);
    el.viewerOriginal.href = item.file_url;
    el.viewerPosition.textContent = t("position", {
      n: formatNumber(state.viewerIndex + 1),
      total: formatNumber(state.total),
    });
    el.viewerPrev.disabled = state.viewerIndex <= 0;
    const lastLoaded = state.viewerIndex >= state.results.length - 1;
    const canLoadMore = state.results.length < state.total && !state.loading;
    el.viewerNext.disabled = state.viewerIndex >= state.total - 1 || (lastLoaded && !canLoadMore);
  }

  // Play a video result in place from its moment. Browsers play H.264/VP9 originals directly; for others (HEVC,
  // AVI…) the server makes an H.264 rendition on demand (202 until ready) and the moment's clip plays meanwhile.
  async function playVideo(item, token) {
    const video = el.viewerVideo;
    const from = isMoment(item) ? item.start : 0;
    const startAt = (offset) => {
      video.addEventListener(
        "loadedmetadata",
        () => {
          if (offset > 0) video.currentTime = offset;
        },
        { once: true },
      );
    };
    if (item.playable) {
      startAt(from);
      video.src = item.play_url;
      return;
    }
    if (isMoment(item)) {
      startAt(0);
      video.src = item.clip_url;
    }
    for (;;) {
      let response;
      try {
        response = await apiFetch(item.play_url, { method: "HEAD" });
      } catch (error) {
        return;
      }
      if (token !== state.viewerToken) return;
      if (response.status !== 202) break;
      el.viewerNote.hidden = false;
      el.viewerNote.textContent = t("preparing_video");
      await new Promise((resolve) => setTimeout(resolve, 2000));
      if (token !== state.viewerToken) return;
    }
    el.viewerNote.hidden = true;
    if (isMoment(item) && video.getAttribute("src") === item.clip_url && !video.paused) return; // keep watching
    startAt(from);
    video.src = item.play_url;
  }

  function playLive() {
    const item = state.results[state.viewerIndex];
    if (!item || !item.motion_url) return;
    el.viewerImage.hidden = true;
    el.viewerVideo.hidden = false;
    el.viewerVideo.poster = item.view_url;
    el.viewerVideo.src = item.motion_url;
    el.viewerVideo.addEventListener(
      "ended",
      () => {
        if (state.results[state.viewerIndex] !== item) return;
        el.viewerVideo.hidden = true;
        el.viewerImage.hidden = false;
      },
      { once: true },
    );
    el.viewerVideo.play().catch(() => {});
  }

  function openViewer(index) {
    if (!state.results[index]) return;
    state.viewerIndex = index;
    renderViewer();
    if (!el.viewer.open) el.viewer.showModal();
    el.viewerClose.focus({ preventScroll: true });
  }

  async function stepViewer(delta) {
    const target = state.viewerIndex + delta;
    if (target < 0) return;
    if (target >= state.results.length) {
      if (state.results.length >= state.total || state.loading) return;
      await runSearch(true);
      if (target >= state.results.length) return;
    }
    state.viewerIndex = target;
    renderViewer();
  }

  function closeViewer() {
    if (el.viewer.open) el.viewer.close();
  }

  function onViewerClosed() {
    state.viewerToken += 1;
    el.viewerVideo.pause();
    el.viewerVideo.removeAttribute("src");
    el.viewerVideo.load();
    const card = el.results.querySelector(`.result[data-index="${state.viewerIndex}"] .result-open`);
    if (card) {
      card.focus({ preventScroll: true });
      card.scrollIntoView({ block: "nearest" });
    }
  }

  // --- status ---------------------------------------------------------------------------------------------------
  async function refreshStatus() {
    clearTimeout(state.pollTimer);
    try {
      state.status = await fetchJson("/api/status");
      state.statusError = null;
    } catch (error) {
      state.statusError = error.message;
    }
    const scan = state.status && state.status.scan;
    const active = Boolean(scan && scan.state !== "idle"); // scanning or paused
    if (state.wasScanning && !active && !state.statusError && scan && scan.last) {
      if (scan.last.error) toast(t("scan_failed", { message: scan.last.error }), "error");
      else toast(t("scan_finished", { summary: scan.last.summary }));
    }
    if (!state.statusError) state.wasScanning = active;
    renderStatus();
    renderMessage();
    let delay = active ? POLL_SCANNING_MS : POLL_IDLE_MS;
    if (state.statusError) delay = POLL_FAILED_MS;
    else if (document.hidden && !active) delay = POLL_HIDDEN_MS;
    state.pollTimer = setTimeout(refreshStatus, delay);
  }

  function pausedReason(reason) {
    if (!reason) return "";
    if (reason === "paused by user") return t("paused_user");
    const window = /^outside scan window (\S+)$/.exec(reason);
    return window ? t("paused_window", { window: window[1] }) : reason; // a reason this page does not know yet
  }

  function lastScanText(last) {
    const stats = last.stats;
    const changes = last.error
      ? t("scan_failed", { message: last.error })
      : stats
        ? t("last_scan_changes", {
          added: formatNumber(stats.added || 0),
          updated: formatNumber(stats.updated || 0),
          moved: formatNumber(stats.moved || 0),
          removed: formatNumber(stats.removed || 0),
        }) + (last.cancelled ? ` (${t("last_scan_cancelled")})` : "")
        : last.summary || "";
    return t("last_scan_info", {
      when: formatDate(last.finished_at, true),
      duration: formatDuration(last.seconds || 0),
      changes,
    });
  }

  function renderStatus() {
    const status = state.status;
    el.status.dataset.state = state.statusError ? "offline" : status ? status.scan.state : "loading";
    if (!status) {
      el.statusText.textContent = state.statusError
        ? t("status_unavailable", { message: state.statusError })
        : t("status_loading");
      el.scanProgress.hidden = true;
      el.scanEta.hidden = true;
      el.scanInfo.hidden = true;
      el.errorsButton.hidden = true;
      for (const button of [el.pauseButton, el.resumeButton, el.cancelButton]) button.hidden = true;
      el.footer.textContent = t("footer_plain", { version: VERSION });
      return;
    }
    const counts = status.counts || {};
    const scan = status.scan || {};
    const active = scan.state === "scanning" || scan.state === "paused";
    const parts = [t("status_indexed", { n: formatNumber(counts.images || 0) })];
    if (counts.videos) parts.push(t("status_videos", { n: formatNumber(counts.videos) }));
    const progress = scan.progress;
    let eta = "";
    if (active && progress) {
      const phaseKey = `phase_${progress.phase}`;
      const phase = phaseKey in I18N.en ? t(phaseKey) : progress.phase; // a phase this page does not know yet
      if (scan.state === "paused") parts.push(t("status_paused", { reason: pausedReason(scan.paused_reason) }));
      if (progress.phase === "walking") {
        parts.push(t("status_walking_found", { phase, found: formatNumber(progress.found || 0) }));
      } else {
        parts.push(progress.total
          ? t("status_scanning_count", { phase, done: formatNumber(progress.done), total: formatNumber(progress.total) })
          : t("status_scanning", { phase }));
      }
      el.scanProgress.hidden = !(progress.total > 0) || progress.phase === "walking";
      el.scanProgress.max = Math.max(progress.total, 1);
      el.scanProgress.value = progress.done;
      el.statusText.title = progress.current || "";
      if (scan.state === "scanning" && progress.rate) {
        eta = t("scan_rate", { rate: formatNumber(Math.round(progress.rate * 10) / 10) });
        if (progress.eta_s != null) eta += ` · ${t("scan_eta", { eta: formatDuration(progress.eta_s) })}`;
      }
    } else {
      el.scanProgress.hidden = true;
      el.statusText.title = scan.last ? scan.last.summary || "" : "";
      if (counts.pending) parts.push(t("status_pending", { n: formatNumber(counts.pending) }));
    }
    if (state.statusError) parts.push(t("status_unavailable", { message: state.statusError }));
    el.statusText.textContent = parts.join(" · ");
    el.scanEta.textContent = eta;
    el.scanEta.hidden = !eta;

    const info = [];
    if (scan.last && scan.last.finished_at) info.push(lastScanText(scan.last));
    if (scan.next_run) info.push(t("next_scan", { when: formatDate(scan.next_run, true) }));
    if (scan.can_scan === false && scan.refusal) info.push(t("scan_elsewhere", { message: scan.refusal }));
    el.scanInfo.textContent = info.join(" · ");
    el.scanInfo.hidden = info.length === 0;

    const problems = (counts.errors || 0) + (counts.skipped || 0);
    el.errorsButton.hidden = problems === 0;
    el.errorsButton.textContent = t("errors_link", { n: formatNumber(problems) });

    el.pauseButton.hidden = scan.state !== "scanning";
    el.resumeButton.hidden = scan.state !== "paused";
    el.cancelButton.hidden = !active;
    for (const button of [el.pauseButton, el.resumeButton, el.cancelButton]) button.disabled = false;
    el.scanButton.hidden = active;
    el.scanButton.disabled = active || scan.can_scan === false;
    el.scanButton.title = scan.can_scan === false && scan.refusal ? scan.refusal : "";
    el.scanButton.textContent = active ? t("scanning") : t("scan_now");

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

  async function startScan() {
    el.scanButton.disabled = true;
    try {
      const response = await apiFetch("/api/scan", { method: "POST" });
      if (response.status === 202) {
        toast(t("scan_started"));
        state.wasScanning = true;
      } else if (response.status === 409) {
        let message = "";
        try {
          message = (await response.json()).message || "";
        } catch (_) {
          message = "";
        }
        // Another process owning the data dir is a different conflict from "already running" here.
        toast(/already running/.test(message) || !message ? t("scan_already_running") : message);
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

  // --- errors panel ---------------------------------------------------------------------------------------------
  async function loadErrors(append) {
    if (state.errorsLoading) return;
    state.errorsLoading = true;
    state.errorsError = null;
    if (!append) {
      state.errorRows = [];
      state.errorTotal = 0;
    }
    renderErrors();
    try {
      const data = await fetchJson(`/api/errors?limit=${ERRORS_PAGE}&offset=${state.errorRows.length}`);
      state.errorRows = state.errorRows.concat(data.errors || []);
      state.errorTotal = data.total || 0;
    } catch (error) {
      state.errorsError = error.message;
    } finally {
      state.errorsLoading = false;
      renderErrors();
    }
  }

  function renderErrors() {
    if (state.errorsError) el.errorsSummary.textContent = t("errors_failed", { message: state.errorsError });
    else if (state.errorsLoading && !state.errorRows.length) el.errorsSummary.textContent = t("errors_loading");
    else if (!state.errorTotal) el.errorsSummary.textContent = t("errors_none");
    else el.errorsSummary.textContent = t("errors_summary", { total: formatNumber(state.errorTotal) });
    el.errorsList.replaceChildren(
      ...state.errorRows.map((row) => {
        const li = document.createElement("li");
        li.className = "error-row";
        li.dataset.status = row.status;
        const head = document.createElement("div");
        head.className = "error-head";
        const badge = document.createElement("span");
        badge.className = "error-badge";
        badge.textContent = t(row.status === "skipped" ? "status_skipped" : "status_error");
        const name = document.createElement("span");
        name.className = "error-name";
        name.textContent = row.path.split(/[\\/]/).pop();
        head.append(badge, name);
        const path = document.createElement("p");
        path.className = "error-path";
        path.textContent = `${row.path} · ${formatBytes(row.size)}`;
        const reason = document.createElement("p");
        reason.className = "error-reason";
        reason.textContent = row.reason || "";
        li.append(head, path, reason);
        return li;
      }),
    );
    el.errorsMore.hidden = state.errorRows.length >= state.errorTotal || Boolean(state.errorsError);
    el.errorsMore.disabled = state.errorsLoading;
  }

  function openErrors() {
    el.errorsPanel.showModal();
    loadErrors(false);
  }

  function renderAll() {
    renderChip();
    renderFilterBadge();
    renderResults(true);
    renderStatus();
    if (el.viewer.open) renderViewer();
    if (el.errorsPanel.open) renderErrors();
  }

  // --- drag and drop, paste -------------------------------------------------------------------------------------
  const hasFiles = (event) => Boolean(event.dataTransfer) && [...event.dataTransfer.types].includes("Files");
  let dragDepth = 0;

  function firstImage(files) {
    const list = [...(files || [])];
    return list.find(looksLikeImage) || list[0] || null;
  }

  function bindDropAndPaste() {
    document.addEventListener("dragenter", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      dragDepth += 1;
      el.dropOverlay.hidden = false;
    });
    document.addEventListener("dragover", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      event.dataTransfer.dropEffect = "copy";
    });
    document.addEventListener("dragleave", (event) => {
      if (!hasFiles(event)) return;
      dragDepth = Math.max(0, dragDepth - 1);
      if (dragDepth === 0) el.dropOverlay.hidden = true;
    });
    document.addEventListener("drop", (event) => {
      if (!hasFiles(event)) return;
      event.preventDefault();
      dragDepth = 0;
      el.dropOverlay.hidden = true;
      const file = firstImage(event.dataTransfer.files);
      if (file) setQueryImage(file);
    });
    document.addEventListener("paste", (event) => {
      const data = event.clipboardData;
      if (!data) return;
      const files = [...data.items].filter((entry) => entry.kind === "file").map((entry) => entry.getAsFile());
      const file = firstImage(files.filter(Boolean));
      if (!file) return; // plain text: let the browser paste it
      event.preventDefault();
      setQueryImage(file);
    });
  }

  // --- wiring ---------------------------------------------------------------------------------------------------
  function bind() {
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
      if (event.key === "Backspace" && !el.query.value && (state.imageFile || state.like)) clearQueryImage(false);
    });

    let pathTimer = null;
    el.filterPath.addEventListener("input", () => {
      clearTimeout(pathTimer);
      pathTimer = setTimeout(onFiltersChanged, 400);
    });
    el.filterPath.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        clearTimeout(pathTimer);
        onFiltersChanged();
      }
    });
    for (const input of [el.filterFrom, el.filterTo, el.filterKind, el.filterMinScore]) {
      input.addEventListener("change", onFiltersChanged);
    }
    el.filterMinScore.addEventListener("keydown", (event) => {
      if (event.key === "Enter") {
        event.preventDefault();
        onFiltersChanged();
      }
    });
    el.resetFilters.addEventListener("click", () => {
      el.filterPath.value = "";
      el.filterFrom.value = "";
      el.filterTo.value = "";
      el.filterKind.value = "all";
      el.filterMinScore.value = "";
      onFiltersChanged();
    });

    el.loadMore.addEventListener("click", () => {
      if (!state.loading) runSearch(true);
    });

    el.viewerClose.addEventListener("click", closeViewer);
    el.viewerPrev.addEventListener("click", () => stepViewer(-1));
    el.viewerNext.addEventListener("click", () => stepViewer(1));
    el.viewerLive.addEventListener("click", playLive);
    el.viewerSimilar.addEventListener("click", () => {
      const item = state.results[state.viewerIndex];
      closeViewer();
      if (item) startLike(item);
    });
    el.viewer.addEventListener("close", onViewerClosed);
    el.viewer.addEventListener("click", (event) => {
      // Clicks on the backdrop land on the dialog itself; clicks beside the picture land on the stage.
      if (event.target === el.viewer || event.target.classList.contains("viewer-stage")) closeViewer();
    });
    el.viewer.addEventListener("keydown", (event) => {
      if (event.target === el.viewerVideo) return; // arrows seek the video
      if (event.key === "ArrowLeft") {
        event.preventDefault();
        stepViewer(-1);
      } else if (event.key === "ArrowRight") {
        event.preventDefault();
        stepViewer(1);
      }
    });
    el.viewerImage.addEventListener("load", () => el.viewerImage.classList.remove("is-loading"));
    el.viewerImage.addEventListener("error", () => el.viewerImage.classList.remove("is-loading"));

    el.errorsButton.addEventListener("click", openErrors);
    el.errorsClose.addEventListener("click", () => el.errorsPanel.close());
    el.errorsMore.addEventListener("click", () => loadErrors(true));
    el.errorsPanel.addEventListener("click", (event) => {
      if (event.target === el.errorsPanel) el.errorsPanel.close();
    });

    el.scanButton.addEventListener("click", startScan);
    el.pauseButton.addEventListener("click", () => controlScan("pause", el.pauseButton, "scan_paused"));
    el.resumeButton.addEventListener("click", () => controlScan("resume", el.resumeButton, "scan_resumed"));
    el.cancelButton.addEventListener("click", () => controlScan("cancel", el.cancelButton, "scan_cancelled"));
    el.langToggle.addEventListener("click", () => setLanguage(state.lang === "zh" ? "en" : "zh", true));

    document.addEventListener("keydown", (event) => {
      const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName) || event.target.isContentEditable;
      if (event.key === "/" && !typing && !event.ctrlKey && !event.metaKey && !event.altKey) {
        event.preventDefault();
        el.query.focus();
        el.query.select();
      }
    });
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) refreshStatus();
    });
    bindDropAndPaste();
  }

  async function restoreFromLocation() {
    const params = new URLSearchParams(window.location.search);
    const q = (params.get("q") || "").trim();
    const like = parseInt(params.get("like") || "", 10);
    if (q) {
      el.query.value = q;
      state.query = { mode: "text", q };
      runSearch(false);
    } else if (like > 0) {
      try {
        startLike(await fetchJson(`/api/items/${like}`));
      } catch (error) {
        state.error = error.message;
        renderResults(true);
      }
    }
  }

  function init() {
    bind();
    setLanguage(initialLanguage(), false);
    refreshStatus();
    restoreFromLocation();
    document.documentElement.classList.add("js-ready");
  }

  init();
})();
