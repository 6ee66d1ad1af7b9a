// Upload: drop or pick several images, watch each one go queued -> uploaded -> indexed.

import { ApiError, api, uploadImage } from "./api.js";
import { announce, formatBytes, h } from "./dom.js";

const POLL_MS = 1000;
const POLL_LIMIT_MS = 10 * 60 * 1000;
const ACCEPT = "image/jpeg,image/png,image/gif,image/webp,image/tiff,image/bmp,image/heic,image/heif,image/avif";

export function render(main) {
  let alive = true;
  const timers = new Set();
  const input = h("input", { type: "file", id: "file-input", multiple: true, accept: ACCEPT, class: "sr-only" });
  const title = h("input", { type: "text", id: "upload-title", maxlength: 500, placeholder: "defaults to the file name" });
  const list = h("ul", { class: "uploads", id: "uploads", "aria-live": "polite" });
  const zone = h("div", { class: "dropzone", id: "dropzone" },
    h("p", {}, h("strong", {}, "Drop images here"), " or"),
    h("label", { for: "file-input", class: "button" }, "Choose files"),
    input,
    h("p", { class: "hint" }, "JPEG, PNG, GIF, WebP, TIFF, BMP, HEIC or AVIF. Each image is analysed by the worker and then appears in search."));
  main.append(h("h1", {}, "Upload"),
    h("div", { class: "field" }, h("label", { for: "upload-title" }, "Title (optional, for a single image)"), title),
    zone, h("h2", { class: "sr-only" }, "Uploads"), list);

  const wait = (ms) => new Promise((resolve) => { const t = setTimeout(() => { timers.delete(t); resolve(); }, ms); timers.add(t); });

  function setStatus(row, text, tone) {
    const status = row.querySelector(".status");
    status.textContent = text;
    row.dataset.state = tone;
  }

  async function pollIndexed(row, id, started) {
    while (alive && Date.now() - started < POLL_LIMIT_MS) {
      try {
        const doc = await api(`/api/images/${encodeURIComponent(id)}`);
        setStatus(row, "indexed", "indexed");
        const name = row.querySelector(".name");
        name.replaceChildren(h("a", { href: `/images/${encodeURIComponent(id)}` }, doc.title || name.textContent));
        announce(`${doc.title} is indexed`);
        return;
      } catch (error) {
        if (!(error instanceof ApiError) || error.status !== 404) {
          setStatus(row, `uploaded; checking failed: ${error.detail || error}`, "error");
          return;
        }
      }
      await wait(POLL_MS);
    }
    if (alive) setStatus(row, "still queued: the worker has not finished it (is `imagedex up` running with a worker?)", "error");
  }

  async function send(file, customTitle) {
    const progress = h("progress", { max: 100, value: 0, "aria-label": `Upload progress of ${file.name}` });
    const row = h("li", { class: "upload", dataset: { state: "uploading" } },
      h("span", { class: "name" }, file.name), h("span", { class: "size muted" }, formatBytes(file.size)), progress,
      h("span", { class: "status" }, "uploading"));
    list.prepend(row);
    try {
      const answer = await uploadImage(file, { title: customTitle, onProgress: (f) => { progress.value = Math.round(f * 100); } });
      progress.value = 100;
      row.dataset.id = answer.id;
      setStatus(row, "queued", "queued");
      announce(`${file.name} uploaded, waiting for analysis`);
      await pollIndexed(row, answer.id, Date.now());
    } catch (error) {
      setStatus(row, `failed: ${error.detail || error}`, "error");
      announce(`${file.name} failed to upload`);
    }
  }

  function take(files) {
    const images = [...files];
    if (!images.length) return;
    const customTitle = images.length === 1 ? title.value.trim() : "";
    title.value = "";
    images.forEach((file) => send(file, customTitle));
  }

  input.addEventListener("change", () => { take(input.files); input.value = ""; });
  for (const name of ["dragenter", "dragover"]) {
    zone.addEventListener(name, (e) => { e.preventDefault(); zone.classList.add("over"); });
  }
  for (const name of ["dragleave", "drop"]) {
    zone.addEventListener(name, (e) => { e.preventDefault(); zone.classList.remove("over"); });
  }
  zone.addEventListener("drop", (e) => take(e.dataTransfer?.files || []));
  return () => { alive = false; timers.forEach(clearTimeout); };
}
