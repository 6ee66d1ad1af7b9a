// Upload: drop or pick several images, watch each one go uploading -> queued -> indexed (or
// failed, with the reason the worker gave).

import { api, uploadImage } from "./api.js";
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

  // The upload's status endpoint says indexed, failed (dead-lettered, with the reason),
  // replaced or pending; only "pending" keeps the row polling.
  async function pollIndexed(row, answer, started) {
    const statusUrl = answer.status_url || `/api/uploads/status?${new URLSearchParams({ key: answer.key, etag: answer.etag })}`;
    while (alive && Date.now() - started < POLL_LIMIT_MS) {
      let state;
      try {
        state = await api(statusUrl);
      } catch (error) {
        setStatus(row, `uploaded; checking failed: ${error.detail || error}`, "error");
        return;
      }
      if (state.status === "indexed") {
        const name = row.querySelector(".name");
        let title = name.textContent;
        try {
          title = (await api(`/api/images/${encodeURIComponent(answer.id)}`)).title || title;
        } catch { /* indexed all the same; the link still works */ }
        setStatus(row, "indexed", "indexed");
        name.replaceChildren(h("a", { href: `/images/${encodeURIComponent(answer.id)}` }, title));
        announce(`${title} is indexed`);
        return;
      }
      if (state.status === "failed") {
        setStatus(row, `failed: ${state.reason}`, "error");
        announce(`${row.querySelector(".name").textContent} could not be indexed: ${state.reason}`);
        return;
      }
      if (state.status === "replaced") {
        setStatus(row, `not indexed: ${state.reason}`, "error");
        return;
      }
      await wait(POLL_MS);
    }
    if (alive) setStatus(row, "still queued after 10 minutes: no worker has finished it yet (is `imagedex up` or `imagedex worker` running?)", "error");
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
      await pollIndexed(row, answer, Date.now());
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
