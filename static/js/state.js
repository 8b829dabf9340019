/* The state the features share (settings, query, results, status, open result) and the query kept in the address. */
const body = document.body.dataset;

export const PAGE_SIZE = parseInt(body.pageSize, 10) || 40;
export const MAX_UPLOAD = parseInt(body.maxUpload, 10) || 0;
export const VERSION = body.version || "";

export const state = {
  // The current query: {mode: "text", q} | {mode: "image", file, q} | {mode: "like", like: {id, name, thumb, t}}
  query: null,
  results: [],
  total: 0,
  tookMs: null,
  loading: false,
  appending: false, // the running search loads the next page (the cards shown stay)
  error: null,
  status: null, // the last /api/status answer
  viewerIndex: -1, // the result open in the large view
};

export const isMoment = (item) => item.kind === "video" && typeof item.start === "number";
// A video can match at several moments: a result is an item plus, for videos, where it matched.
export const resultKey = (item) => (isMoment(item) ? `${item.id}@${item.start}` : String(item.id));
export const indexedCount = (counts) => (counts.images || 0) + (counts.videos || 0);

/** Keep a text or "similar to" query in the address, so a reload or a shared link repeats it. */
export function updateLocation(query) {
  const params = new URLSearchParams();
  if (query && query.mode === "text") params.set("q", query.q);
  if (query && query.mode === "like") params.set("like", String(query.like.id));
  const search = params.toString();
  const url = `${window.location.pathname}${search ? `?${search}` : ""}`;
  if (url !== `${window.location.pathname}${window.location.search}`) window.history.replaceState(null, "", url);
}

/** The query the address asks for: {q} (words), {like} (an item id), or null. */
export function queryFromLocation() {
  const params = new URLSearchParams(window.location.search);
  const q = (params.get("q") || "").trim();
  const like = parseInt(params.get("like") || "", 10);
  if (q) return { q };
  return like > 0 ? { like } : null;
}
