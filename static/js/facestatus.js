/* The faces pass in the status line: "Looking for faces 3 / 12" while it reads, or where it is paused. */
import { formatNumber } from "./format.js";
import { t } from "./i18n.js";

/** Add the faces pass's part to the status line `node` (nothing while it is idle or off). */
export function appendFacesStatus(node, faces) {
  if (!faces || !faces.enabled || !faces.progress) return;
  const counts = { done: formatNumber(faces.progress.done), total: formatNumber(faces.progress.total) };
  node.textContent += ` · ${t(faces.state === "paused" ? "faces_status_paused" : "faces_status_reading", counts)}`;
}
