/* A picture shared to the app from the phone's gallery: the search by it that /?shared=TOKEN asks for. */
// The manifest's share target (web/install.py) holds the picture on the server and opens /?shared=TOKEN.
import { apiFetch } from "./api.js";
import { t } from "./i18n.js";
import { setQueryImage } from "./query.js";
import { toast } from "./toast.js";

/** Search by the shared picture the address names, if any; true when the address named one. The token then leaves
 * the address, so that Back and reload show the search, not the share again. */
export async function takeSharedPicture() {
  const params = new URLSearchParams(window.location.search);
  const token = params.get("shared");
  if (!token) return false;
  try {
    const response = await apiFetch(`/share?token=${encodeURIComponent(token)}`);
    if (response.status === 401) return true; // on the way to the login page, which comes back here
    params.delete("shared");
    const rest = params.toString();
    window.history.replaceState(window.history.state, "", window.location.pathname + (rest ? `?${rest}` : ""));
    if (!response.ok) throw new Error(String(response.status));
    const blob = await response.blob();
    const name = decodeURIComponent(response.headers.get("X-Filename") || "") || t("query_image");
    // The server sends the bytes as they came; it reads the picture's type from its content when it searches.
    const type = blob.type.startsWith("image/") ? blob.type : "image/*";
    setQueryImage(new File([blob], name, { type }));
  } catch (_) {
    toast(t("share_again"), "error");
  }
  return true;
}
