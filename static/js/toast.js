/* The short message at the bottom of the page (#toast) that hides itself after a few seconds. */
const TOAST_MS = 5000;
let timer = null;

/** Show `message`; `kind` "error" colours it as a failure. */
export function toast(message, kind) {
  const node = document.getElementById("toast");
  node.textContent = message;
  node.dataset.kind = kind || "info";
  node.hidden = false;
  clearTimeout(timer);
  timer = setTimeout(() => {
    node.hidden = true;
  }, TOAST_MS);
}
