/* The folder picker's choices: the library's folder tree with counts (GET /api/folders), as indented options. */
import { fetchJson } from "./api.js";
import { setFolderChoices } from "./filters.js";

const MAX_DEPTH = 6; // deeper folders are still found by the path filter

// {path, name?, count, children?} (or a list of them, or {folders: […]}) → [{path, name, count, depth}], depth-first.
function flatten(nodes, depth, out) {
  for (const node of nodes || []) {
    if (!node || typeof node.path !== "string") continue;
    const name = node.name || node.path.split(/[\\/]/).filter(Boolean).pop() || node.path;
    out.push({ path: node.path, name, count: node.count != null ? node.count : node.total || 0, depth });
    if (depth < MAX_DEPTH) flatten(node.children, depth + 1, out);
  }
  return out;
}

/** Ask for the folders and offer them in the filters (no picker choices when the server has none to give). */
export async function loadFolders() {
  try {
    const data = await fetchJson("/api/folders");
    const roots = Array.isArray(data) ? data : data.folders || data.roots || (data.path ? [data] : []);
    setFolderChoices(flatten(roots, 0, []));
  } catch (_) {
    setFolderChoices([]); // the path filter still narrows by folder
  }
}
