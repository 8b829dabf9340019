/* The service worker (served as /sw.js by materialsearch/web/install.py, so its scope is the whole site).
 *
 * It caches the app shell only: the offline page and the static files (CSS, scripts, icons). Photos, thumbnails,
 * videos and API answers are never cached or even looked at: they go to the network as if there were no worker.
 * Pages and static files are fetched from the network first, so an updated app is never served stale; the cache
 * is the fallback when the NAS cannot be reached (a page then shows the offline page). The cache is named by the
 * app's asset hash: a new version installs a new cache, takes over at once and deletes the old ones.
 */
const CACHE = {{ cache_name | tojson }};
const SHELL = {{ shell | tojson }};
const OFFLINE = SHELL[0];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches.open(CACHE).then((cache) => cache.addAll(SHELL)).then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((names) => Promise.all(names.filter((name) => name !== CACHE).map((name) => caches.delete(name))))
      .then(() => self.clients.claim()),
  );
});

const isShell = (url) => url.origin === self.location.origin && url.pathname.startsWith("/static/");

async function fromNetworkThenCache(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok && response.type === "basic") cache.put(request, response.clone());
    return response;
  } catch (error) {
    const cached = await cache.match(request);
    if (cached) return cached;
    throw error;
  }
}

async function pageOrOffline(request) {
  try {
    return await fetch(request);
  } catch (_) {
    const cache = await caches.open(CACHE);
    return (await cache.match(OFFLINE)) || Response.error();
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return; // searches by picture, the share target, scan control: the network's
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") event.respondWith(pageOrOffline(request));
  else if (isShell(url)) event.respondWith(fromNetworkThenCache(request));
  // everything else (/api/…: photos, thumbnails, videos, answers) is left to the browser
});
