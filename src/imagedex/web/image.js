// One image: the picture with its boxes, what was recognised, and its metadata.

import { api, contentUrl, query, thumbnailUrl } from "./api.js";
import { clear, formatBytes, formatDate, h, s } from "./dom.js";
import { labelsSection } from "./image_labels.js";

const UNSAFE_AT = 50; // moderation confidence at which the index counts an image as unsafe

/** Boxes are fractions of the image ({left, top, width, height}); accept the common spellings. */
function boxOf(item) {
  const box = item?.bbox || item?.bounding_box || item?.box || item?.BoundingBox;
  if (!box) return null;
  const get = (...keys) => { for (const k of keys) if (box[k] !== undefined) return Number(box[k]); return NaN; };
  const result = { left: get("left", "Left", "x"), top: get("top", "Top", "y"), width: get("width", "Width", "w"), height: get("height", "Height", "h") };
  return Object.values(result).every(Number.isFinite) ? result : null;
}

function overlay(doc, showLabels, showFaces) {
  const width = doc.width || 1000;
  const height = doc.height || 1000;
  const stroke = Math.max(width, height) / 300;
  const font = Math.max(width, height) / 40;
  const svg = s("svg", { class: "overlay", viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", "aria-hidden": "true" });
  const drawBox = (box, caption, kind, link) => {
    const x = box.left * width;
    const y = box.top * height;
    const g = s("g", { class: `box ${kind}`, "aria-hidden": link ? null : "true" },
      s("rect", { x, y, width: box.width * width, height: box.height * height, fill: "none", "stroke-width": stroke }),
      s("text", { x: x + stroke, y: Math.max(font, y - stroke), "font-size": font }, caption));
    if (!link) { svg.append(g); return; }
    // a face of a person links to them; the overlay lets clicks through, the face box takes them
    const a = s("a", { href: link.href, "aria-label": link.name, class: "face-link" }, g);
    a.style.pointerEvents = "all";
    svg.append(a);
  };
  const faceKeys = new Set(showFaces ? (doc.faces || []).map((f) => JSON.stringify(boxOf(f))) : []);
  if (showLabels) {
    for (const label of doc.labels || []) {
      for (const instance of label.instances || []) {
        const box = boxOf(instance);
        // a "Face" label instance is the face box itself: draw it once, as a face
        if (box && !faceKeys.has(JSON.stringify(box))) drawBox(box, `${label.label} ${Math.round(instance.confidence ?? label.confidence)}%`, "label-box");
      }
    }
  }
  if (showFaces) {
    (doc.faces || []).forEach((face, i) => {
      const box = boxOf(face);
      const person = face.person_id;
      if (!box) return;
      if (person === null || person === undefined) drawBox(box, `face ${i + 1}`, "face-box");
      else drawBox(box, `face ${i + 1} · person ${person}`, "face-box", { href: `/people?person=${encodeURIComponent(person)}`, name: `Face ${i + 1}: person ${person}` });
    });
  }
  if (svg.querySelector("a")) { // the face links are for everyone: only the captions stay hidden
    svg.removeAttribute("aria-hidden");
    svg.setAttribute("role", "group");
    svg.setAttribute("aria-label", "Faces in the picture");
  }
  return svg;
}

function moderationBlock(doc) {
  const items = doc.moderation || [];
  const worst = Math.max(0, ...items.map((m) => Number(m.confidence) || 0));
  const unsafe = worst >= UNSAFE_AT;
  return h("div", { id: "moderation-state" },
    h("p", { class: unsafe ? "badge bad" : "badge good" }, unsafe ? "Unsafe" : "Safe"),
    items.length
      ? h("ul", { class: "plain" }, items.map((m) => h("li", {}, `${m.label}${m.parent ? ` (${m.parent})` : ""}: ${Number(m.confidence).toFixed(1)}%`)))
      : h("p", { class: "muted" }, "No moderation labels."));
}

function textBlock(doc) {
  const lines = (doc.text || []).map((line) => (typeof line === "string" ? line : line.text)).filter(Boolean);
  return lines.length ? h("pre", { class: "ocr", id: "ocr-text" }, lines.join("\n")) : h("p", { class: "muted" }, "No text found in the image.");
}

function metadata(doc) {
  const rows = [
    ["Title", doc.title],
    ["Dimensions", doc.width && doc.height ? `${doc.width} × ${doc.height} px` : ""],
    ["File size", doc.size ? formatBytes(doc.size) : ""],
    ["Type", doc.content_type],
    ["Camera", doc.camera],
    ["Taken", formatDate(doc.taken_at)],
    ["Location", doc.gps && Number.isFinite(doc.gps.lat) ? `${doc.gps.lat.toFixed(5)}, ${doc.gps.lon.toFixed(5)}` : ""],
    ["Indexed", formatDate(doc.ingested_at)],
    ["Bucket", doc.bucket],
    ["Key", doc.key], // never the store's address: for a local folder that is a server path
    ["Faces", String((doc.faces || []).length)],
    ["Analyzed with", Object.entries(doc.analyzed_with || {}).map(([k, v]) => `${k} ${v}`).join(", ")],
  ].filter(([, value]) => value);
  const errors = Object.entries(doc.errors || {});
  return h("div", {},
    h("dl", { class: "meta", id: "metadata" }, rows.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    errors.length ? h("div", { class: "error" }, h("p", {}, "Some analyzers failed on this image:"),
      h("ul", { class: "plain" }, errors.map(([k, v]) => h("li", {}, `${k}: ${v}`)))) : null,
    nearDuplicates(doc));
}

/** The images that look almost the same, whichever of the two was indexed first. */
function nearDuplicates(doc) {
  const others = doc.near_duplicate_images || [];
  if (!others.length) return null;
  return h("div", { id: "near-duplicates" }, h("p", {}, "Near duplicates:"),
    h("ul", { class: "plain" }, others.map((other) => h("li", {},
      h("a", { href: `/images/${encodeURIComponent(other.id)}` }, other.title || other.id),
      h("span", { class: "muted" }, ` · id ${other.id}`)))));
}

const mayEdit = (session) => !session?.authRequired || ["editor", "admin"].includes(session.role);

/** Delete the image after a confirmation; the page then says what was removed. */
function deleteButton(main, doc) {
  const button = h("button", { type: "button", class: "secondary", id: "delete-image" }, "Delete");
  button.addEventListener("click", async () => {
    const name = doc.title || doc.id;
    if (!window.confirm(`Delete ${name}? It is removed from the index and the bucket, for good.`)) return;
    button.disabled = true;
    try {
      await api(`/api/images/${encodeURIComponent(doc.id)}`, { method: "DELETE" });
    } catch (error) {
      button.disabled = false;
      main.querySelector("#delete-error")?.remove();
      button.after(h("span", { class: "error", id: "delete-error", role: "alert" }, ` Not deleted: ${error.detail || error}`));
      return;
    }
    document.title = "Deleted · imagedex";
    clear(main).append(h("h1", {}, "Deleted"),
      h("p", { role: "status", id: "deleted-status" }, `${name} was removed from the index, the bucket and the thumbnails.`),
      h("p", {}, h("a", { href: "/search" }, "Back to search")));
  });
  return button;
}

async function originalLink(doc) {
  const link = h("a", { class: "button", id: "original-link", href: doc.url || contentUrl(doc.id), target: "_blank", rel: "noopener" }, "Open the original");
  try {
    const signed = await api(`/api/images/${encodeURIComponent(doc.id)}/link`);
    if (signed?.url) {
      link.href = signed.url;
      if (signed.expires_at) link.title = `Link valid until ${formatDate(signed.expires_at)}`;
    }
  } catch { /* no signed links on this server: the content URL serves the original */ }
  return link;
}

async function similar(doc, into) {
  try {
    const data = await api("/api/search" + query({ like: doc.id, limit: 6 }));
    if (!data.hits.length) { into.append(h("p", { class: "muted" }, "No similar images yet.")); return; }
    into.append(h("ul", { class: "grid small-grid" }, data.hits.map((hit) =>
      h("li", { class: "card" }, h("a", { class: "card-link", href: `/images/${encodeURIComponent(hit.id)}` },
        h("img", { src: hit.thumbnail || thumbnailUrl(hit.id, 320), loading: "lazy", width: 160, height: 120, alt: hit.description || hit.title }),
        h("span", { class: "card-title" }, hit.title))))));
  } catch (error) {
    into.append(h("p", { class: "muted" }, error.detail || "Similar images are not available."));
  }
}

export function render(main, _url, params, { session } = {}) {
  const [id] = params;
  let alive = true;
  main.append(h("p", { class: "muted", role: "status" }, "Loading the image…"));
  (async () => {
    let doc;
    try {
      doc = await api(`/api/images/${encodeURIComponent(id)}`);
    } catch (error) {
      if (!alive) return;
      clear(main).append(h("h1", {}, error.status === 404 ? "Not indexed (yet)" : "The image could not load"),
        h("p", { role: "alert" }, error.detail || String(error)),
        h("p", {}, error.status === 404 ? "A new upload appears here once the worker has analysed it; reload in a few seconds, or " : "", h("a", { href: "/search" }, "search the collection"), "."));
      return;
    }
    if (!alive) return;
    document.title = `${doc.title || "Image"} · imagedex`;
    const showLabels = h("input", { type: "checkbox", id: "show-label-boxes", checked: true });
    const showFaces = h("input", { type: "checkbox", id: "show-face-boxes", checked: true });
    // browsers cannot show HEIC/HEIF originals (nor TIFF): show the largest thumbnail instead
    const displayable = !/^image\/(heic|heif|tiff)/.test(doc.content_type || "");
    const source = displayable ? doc.url || contentUrl(doc.id) : thumbnailUrl(doc.id, 1280);
    const picture = h("img", { id: "picture", src: source, alt: doc.description || doc.title, width: doc.width || null, height: doc.height || null });
    const stage = h("div", { class: "stage" }, picture, overlay(doc, true, true));
    // as wide as the column allows, but never taller than most of the window
    if (doc.width && doc.height) stage.style.maxWidth = `min(100%, calc(75vh * ${(doc.width / doc.height).toFixed(4)}))`;
    const redraw = () => stage.querySelector("svg.overlay").replaceWith(overlay(doc, showLabels.checked, showFaces.checked));
    showLabels.addEventListener("change", redraw);
    showFaces.addEventListener("change", redraw);
    const hasBoxes = (doc.faces || []).length || (doc.labels || []).some((l) => (l.instances || []).length);
    const more = h("div", { id: "similar" });
    clear(main).append(
      h("p", { class: "crumbs" }, h("a", { href: "/search" }, "← Search")),
      h("h1", { id: "image-title" }, doc.title || doc.id),
      h("div", { class: "image-layout" },
        h("figure", { class: "figure" }, stage,
          h("figcaption", { id: "description" }, doc.description || "No description yet."),
          hasBoxes ? h("div", { class: "toggles" },
            h("span", { class: "check" }, showLabels, h("label", { for: "show-label-boxes" }, "Label boxes")),
            h("span", { class: "check" }, showFaces, h("label", { for: "show-face-boxes" }, `Faces (${(doc.faces || []).length})`))) : null,
          h("p", { class: "actions", id: "image-actions" },
            h("a", { class: "button secondary", href: `/search?like=${encodeURIComponent(doc.id)}` }, "More like this"),
            mayEdit(session) ? [" ", deleteButton(main, doc)] : null)),
        h("div", { class: "details" },
          h("section", { "aria-labelledby": "h-labels" }, h("h2", { id: "h-labels" }, "Labels"), labelsSection(doc, mayEdit(session))),
          h("section", { "aria-labelledby": "h-text" }, h("h2", { id: "h-text" }, "Text in the image"), textBlock(doc)),
          h("section", { "aria-labelledby": "h-moderation" }, h("h2", { id: "h-moderation" }, "Moderation"), moderationBlock(doc)),
          h("section", { "aria-labelledby": "h-meta" }, h("h2", { id: "h-meta" }, "Details"), metadata(doc)))),
      h("section", { "aria-labelledby": "h-similar" }, h("h2", { id: "h-similar" }, "More like this"), more),
    );
    const link = await originalLink(doc);
    if (alive) main.querySelector("#image-actions")?.prepend(link, " ");
    similar(doc, more);
  })();
  return () => { alive = false; };
}
