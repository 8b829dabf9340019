/* What a result's score means, said where it helps: the viewer's details, only when it means something. */
// A similarity, or how well a file name matched; cards carry none, and the filters alone answering (newest first)
// have none to show.
import { formatScore } from "./format.js";
import { t } from "./i18n.js";
import { state } from "./state.js";

const MEANINGS = { similarity: "score_similarity", name: "score_name" }; // the search answer's `scores`

/** The viewer's "Score" row for `item`, explained (nothing when the score carries no meaning). */
export function renderScore(details, item) {
  const words = MEANINGS[state.scores];
  if (typeof item.score !== "number" || !words || state.viewerIndex < 0) return;
  const dt = document.createElement("dt");
  dt.textContent = t("detail_score");
  const dd = document.createElement("dd");
  dd.className = "score-explained";
  dd.textContent = t(words, { score: formatScore(item.score) });
  details.append(dt, dd);
}
