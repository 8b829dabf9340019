/* The places view (#places-panel): countries and cities with counts, an optional map, and picking a place. */
import { fetchJson } from "./api.js";
import { formatNumber } from "./format.js";
import { currentLanguage, t } from "./i18n.js";

// Leaflet (static/vendor/leaflet, BSD-2-Clause) is loaded only when MS_MAP_TILE_URL sets a tile server.
const LEAFLET_JS = "/static/vendor/leaflet/leaflet.js";
const LEAFLET_CSS = "/static/vendor/leaflet/leaflet.css";
const MAP_MAX_ZOOM = 12;
const MARKER_MIN_RADIUS = 5;
const MARKER_MAX_RADIUS = 18;
const el = {
  open: document.getElementById("places-button"),
  panel: document.getElementById("places-panel"),
  close: document.getElementById("places-close"),
  summary: document.getElementById("places-summary"),
  map: document.getElementById("places-map"),
  attribution: document.getElementById("places-attribution"),
  list: document.getElementById("places-list"),
  filter: document.getElementById("filter-place"),
};
const places = { data: null, loading: false, failure: null, map: null, markers: null };

export function bindPlaces() {
  el.open.addEventListener("click", () => {
    el.panel.showModal();
    loadPlaces();
  });
  el.close.addEventListener("click", () => el.panel.close());
  el.panel.addEventListener("click", (event) => {
    if (event.target === el.panel) el.panel.close(); // a click on the backdrop
  });
}

export const placesAreOpen = () => el.panel.open;

/** The item's place for the viewer's details ("London, England, United Kingdom"), or "" without one. */
export function placeLabel(item) {
  const where = item.location;
  if (!where) return "";
  const zh = currentLanguage() === "zh";
  const parts = [zh ? where.city_zh || where.city : where.city, where.region, zh ? where.country_zh : where.country];
  return parts.filter((part, index) => part && parts.indexOf(part) === index).join(zh ? "，" : ", ");
}

async function loadPlaces() {
  if (places.loading) return;
  places.loading = true;
  places.failure = null;
  renderPlaces();
  try {
    places.data = await fetchJson("/api/places");
  } catch (error) {
    places.failure = error.message;
  } finally {
    places.loading = false;
    renderPlaces();
  }
}

const nameOf = (english, chinese) => (currentLanguage() === "zh" && chinese ? chinese : english);

export function renderPlaces() {
  const data = places.data;
  if (places.failure) el.summary.textContent = t("places_failed", { message: places.failure });
  else if (places.loading && !data) el.summary.textContent = t("places_loading");
  else if (!data || !data.located) el.summary.textContent = t("places_none");
  else
    el.summary.textContent = t("places_summary", {
      n: formatNumber(data.located),
      countries: formatNumber(data.countries.length),
    });
  el.list.replaceChildren(...(data ? data.countries.map(countryRow) : []));
  el.attribution.hidden = !data || !data.located;
  if (data && data.map_tiles && data.located) showMap(data);
}

function countButton(label, count, place) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "place-pick";
  const name = document.createElement("span");
  name.className = "place-name";
  name.textContent = label;
  const badge = document.createElement("span");
  badge.className = "place-count";
  badge.textContent = formatNumber(count);
  button.append(name, badge);
  button.title = t("places_pick", { place: label });
  button.addEventListener("click", () => pickPlace(place));
  return button;
}

function countryRow(country) {
  const row = document.createElement("li");
  row.className = "place-country";
  const countryName = nameOf(country.name, country.name_zh);
  row.append(countButton(countryName, country.count, countryName)); // the filter takes names: the field shows it
  const cities = document.createElement("ul");
  cities.className = "place-cities";
  for (const city of country.cities) {
    const item = document.createElement("li");
    const label = nameOf(city.city, city.city_zh);
    item.append(countButton(city.region ? `${label} · ${city.region}` : label, city.count, label));
    cities.append(item);
  }
  row.append(cities);
  return row;
}

// Filter by the place: the search, or with nothing asked the timeline (everything taken there, newest first).
function pickPlace(place) {
  el.panel.close();
  el.filter.value = place;
  el.filter.dispatchEvent(new Event("change"));
}

function loadLeaflet() {
  if (window.L) return Promise.resolve(window.L);
  const css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = LEAFLET_CSS;
  document.head.append(css);
  return new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = LEAFLET_JS;
    script.onload = () => resolve(window.L);
    script.onerror = () => reject(new Error(t("places_map_failed")));
    document.head.append(script);
  });
}

async function showMap(data) {
  el.map.hidden = false;
  let L;
  try {
    L = await loadLeaflet();
  } catch (error) {
    el.map.hidden = true;
    places.failure = error.message;
    return;
  }
  if (!places.map) {
    places.map = L.map(el.map, { worldCopyJump: true });
    L.tileLayer(data.map_tiles, { maxZoom: MAP_MAX_ZOOM, attribution: t("places_tiles_attribution") }).addTo(
      places.map,
    );
    places.markers = L.layerGroup().addTo(places.map);
  }
  places.markers.clearLayers();
  const points = [];
  const most = Math.max(...data.countries.flatMap((country) => country.cities.map((city) => city.count)));
  for (const country of data.countries) {
    for (const city of country.cities) {
      const radius = MARKER_MIN_RADIUS + (MARKER_MAX_RADIUS - MARKER_MIN_RADIUS) * Math.sqrt(city.count / most);
      const label = nameOf(city.city, city.city_zh);
      L.circleMarker([city.latitude, city.longitude], { radius, className: "place-marker" })
        .bindTooltip(`${label} (${formatNumber(city.count)})`)
        .on("click", () => pickPlace(label))
        .addTo(places.markers);
      points.push([city.latitude, city.longitude]);
    }
  }
  places.map.invalidateSize();
  places.map.fitBounds(points, { padding: [24, 24], maxZoom: MAP_MAX_ZOOM - 2 });
}
