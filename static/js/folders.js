/* The folder picker's choices: the library's folder tree with counts (GET /api/folders), as indented options. */
import { fetchJson } from "./api.js";
import { setFolderChoices } from "./filters.js";

const MAX_DEPTH = 6; // deeper folders are still found by the path filter

// {name, prefix, count, children} trees → [{prefix, name, count, depth}], depth-first.
function flatten(nodes, depth, out) {
  for (const node of nodes || []) {
    out.push({ prefix: node.prefix, name: node.name, count: node.count, depth });
    if (depth < MAX_DEPTH) flatten(node.children, depth + 1, out);
  }
  return out;
}

/** Ask for the folders and offer them in the filters (no picker choices when the server has none to give). */
export async function loadFolders() {
  try {
    const data = await fetchJson("/api/folders");
    setFolderChoices(flatten(data.roots, 0, []));
  } catch (_) {
    setFolderChoices([]); // the path filter still narrows by folder
  }
}
