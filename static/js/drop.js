/* Searching with a picture dropped on the page or pasted into it (the #drop-overlay shows while dragging). */
import { looksLikeImage, setQueryImage } from "./query.js";

const overlay = document.getElementById("drop-overlay");
const hasFiles = (event) => Boolean(event.dataTransfer) && [...event.dataTransfer.types].includes("Files");
let dragDepth = 0; // dragenter/dragleave fire for every element crossed: the overlay hides when back at 0

function firstImage(files) {
  const list = [...(files || [])];
  return list.find(looksLikeImage) || list[0] || null;
}

export function bindDropAndPaste() {
  document.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth += 1;
    overlay.hidden = false;
  });
  document.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("dragleave", (event) => {
    if (!hasFiles(event)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) overlay.hidden = true;
  });
  document.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    overlay.hidden = true;
    const file = firstImage(event.dataTransfer.files);
    if (file) setQueryImage(file);
  });
  document.addEventListener("paste", (event) => {
    const data = event.clipboardData;
    if (!data) return;
    const files = [...data.items].filter((entry) => entry.kind === "file").map((entry) => entry.getAsFile());
    const file = firstImage(files.filter(Boolean));
    if (!file) return; // plain text: let the browser paste it
    event.preventDefault();
    setQueryImage(file);
  });
}
