/* The service worker's registration (/sw.js: the app shell for offline use, see templates/sw.js). */

/** Register the worker. Browsers allow it only in a secure context (https, or http://localhost): over plain http
 * on a LAN address the page works the same without it. */
export function registerServiceWorker() {
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return;
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {
    /* not installable here (a policy, private mode): the page works the same */
  });
}
