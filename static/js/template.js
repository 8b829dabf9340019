/* Copies of the page's <template> elements (cards and rows are built from these, never from strings). */

/** A fresh copy of the single element inside <template id="…">. */
export function fromTemplate(id) {
  return document.getElementById(id).content.firstElementChild.cloneNode(true);
}
