/* The strings of what the page says about what it shows: a narrowed timeline, items arriving during a scan, what a
 * score means, the viewer's zoom and full screen, and the API docs link; in English and Chinese. */

export const VIEW_STRINGS = {
  en: {
    timeline_filtered: "Photos and videos: {filters}",
    empty_index_scanning: "The scan is reading your library: photos appear here as they are indexed.",
    no_filtered_items: "Nothing here matches these filters",
    no_filtered_items_text: "Remove a tag or the place, or reset the filters.",
    new_items: "{n} new — show",
    new_items_title: "The scan added items: show the newest",
    score_similarity: "{score} — how close it is to what you asked (cosine similarity, −1 to 1; above about 0.2 is a good match for words, above 0.8 for a picture)",
    score_name: "{score} — how well the file name matches (1: exactly, 0.75: starts with it, 0.5: a word in it)",
    zoom_in: "Zoom in (double-click, pinch or the mouse wheel)",
    zoom_out: "Back to the whole picture",
    full_screen: "Full screen",
    exit_full_screen: "Leave full screen",
    loading_picture: "Loading the picture…",
    api_docs: "API",
    api_docs_title: "The REST API's documentation (OpenAPI)",
  },
  zh: {
    timeline_filtered: "照片和视频：{filters}",
    empty_index_scanning: "正在扫描图库：照片会在建立索引后陆续出现在这里。",
    no_filtered_items: "没有符合这些筛选条件的照片",
    no_filtered_items_text: "去掉一个标签或地点，或重置筛选条件。",
    new_items: "新增 {n} 项，点击显示",
    new_items_title: "扫描新增了照片和视频：显示最新的",
    score_similarity: "{score}：与你搜索的内容有多接近（余弦相似度，−1 到 1；文字搜索约 0.2 以上、以图搜图 0.8 以上算好的匹配）",
    score_name: "{score}：文件名匹配的程度（1：完全相同，0.75：以它开头，0.5：包含这个词）",
    zoom_in: "放大（双击、双指捏合或滚动鼠标滚轮）",
    zoom_out: "恢复显示整张照片",
    full_screen: "全屏",
    exit_full_screen: "退出全屏",
    loading_picture: "正在加载照片…",
    api_docs: "API",
    api_docs_title: "REST API 文档（OpenAPI）",
  },
};
