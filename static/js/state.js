/* The state the features share: settings, query, results (or the timeline's), status, the open result. */
const body = document.body.dataset;

export const PAGE_SIZE = parseInt(body.pageSize, 10) || 40;
export const MAX_UPLOAD = parseInt(body.maxUpload, 10) || 0;
export const VERSION = body.version || "";

export const state = {
  // The current query: {mode: "text", q, raw, exclude} | {mode: "image", file, q, exclude} | {mode: "name"}
  // (a file name alone) | {mode: "like", like: {id, name, thumb, t}}; null: the timeline.
  query: null,
  nextCursor: null, // the timeline's next page
  timelineIndexed: null, // how many items were indexed when the timeline shown was loaded
  moreCount: null, // with "good matches only": how many more "all" would show
  results: [],
  scores: null, // what the search's scores mean: "similarity", "name" or "none" (its `scores`)
  understood: null, // what the server read in the sentence (its `understood`), for the chips
  total: 0,
  tookMs: null,
  loading: false,
  appending: false, // the running search loads the next page (the cards shown stay)
  error: null,
  status: null, // the last /api/status answer
  viewerIndex: -1, // the result open in the large view
  viewerItem: null, // or an item opened on its own (from the address, not among the results)
};

export const isMoment = (item) => item.kind === "video" && typeof item.start === "number";
// A video can match at several moments: a result is an item plus, for videos, where it matched.
export const resultKey = (item) => (isMoment(item) ? `${item.id}@${item.start}` : String(item.id));
export const indexedCount = (counts) => (counts.images || 0) + (counts.videos || 0);
