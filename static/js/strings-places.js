/* The strings of the places view and the place filter (places.js), in English and Chinese. */

export const PLACE_STRINGS = {
  en: {
    places: "Places",
    places_title: "Where your photos were taken",
    places_loading: "Loading places…",
    places_none: "No places yet: no indexed photo or video carries a GPS position.",
    places_summary: "{n} items with a place, in {countries} countries or regions. Pick one to search within it.",
    places_failed: "Cannot load the places: {message}",
    places_pick: "Search within {place}",
    places_map_failed: "The map could not be loaded.",
    places_attribution: "Places: GeoNames (CC BY 4.0), country names: Unicode CLDR.",
    places_tiles_attribution: "Map tiles: the server set in MS_MAP_TILE_URL",
    filter_place: "Place",
    filter_place_placeholder: "e.g. London, 英国, Japan",
  },
  zh: {
    places: "地点",
    places_title: "照片的拍摄地点",
    places_loading: "正在加载地点…",
    places_none: "还没有地点：已索引的照片和视频都不带 GPS 位置。",
    places_summary: "{n} 个项目有地点，分布在 {countries} 个国家或地区。点选一处即在其中搜索。",
    places_failed: "无法加载地点：{message}",
    places_pick: "在{place}中搜索",
    places_map_failed: "地图无法加载。",
    places_attribution: "地点数据：GeoNames（CC BY 4.0），国家名称：Unicode CLDR。",
    places_tiles_attribution: "地图图块：MS_MAP_TILE_URL 设置的服务器",
    filter_place: "地点",
    filter_place_placeholder: "例如 伦敦、英国、Japan",
  },
};
