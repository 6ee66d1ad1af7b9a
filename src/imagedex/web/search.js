// The search page: one query box plus controls that edit its text, facets, a thumbnail grid.

import { api, query, thumbnailUrl } from "./api.js";
import { announce, clear, debounce, h } from "./dom.js";
import { readQuery, toggleLabel, withConfidence, withDate, withModeration } from "./querytext.js";

const PAGE_SIZE = 24;
// matches are counted exactly up to this many; past it the page says "More than 10,000" (a
// keystroke on a short prefix would otherwise count most of the collection)
const TRACK_TOTAL = 10000;
let updatePage = null; // the rendered page's own update, for back/forward within the search page
const TYPING_DELAY_MS = 200;

/** The search the URL describes: /search?q=label:dog+confidence>=90&semantic=1&like=ID&page=2 */
function stateFromUrl(url) {
  const p = url.searchParams;
  return {
    q: p.get("q") || "",
    semantic: p.get("semantic") === "1" || p.get("semantic") === "true",
    like: p.get("like") || "",
    sort: p.get("sort") || "",
    page: Math.max(1, Number.parseInt(p.get("page") || "1", 10) || 1),
  };
}

function urlFromState(state) {
  return "/search" + query({
    q: state.q,
    semantic: state.semantic ? "1" : "",
    like: state.like,
    sort: state.sort,
    page: state.page > 1 ? state.page : "",
  });
}

function thumbSize(hit) {
  const { width, height } = hit;
  if (!width || !height) return { width: 320, height: 240 };
  const scale = 320 / Math.max(width, height);
  return { width: Math.round(width * scale), height: Math.round(height * scale) };
}

function resultCard(hit) {
  const size = thumbSize(hit);
  const img = h("img", {
    src: hit.thumbnail || thumbnailUrl(hit.id, 320), // the versioned URL caches for good
    loading: "lazy",
    decoding: "async",
    width: size.width,
    height: size.height,
    alt: hit.description || hit.title || "image",
  });
  // until the thumbnail service answers for this image, fall back to the original once
  img.addEventListener("error", () => {
    if (hit.url && img.src !== new URL(hit.url, location.href).href) img.src = hit.url;
  }, { once: true });
  const top = (hit.labels || [])[0];
  return h("li", { class: "card" },
    h("a", { class: "card-link", href: `/images/${encodeURIComponent(hit.id)}`, dataset: { id: hit.id } },
      img,
      h("span", { class: "card-title" }, hit.title || hit.key || hit.id)),
    h("div", { class: "card-meta" },
      top ? h("span", { class: "chip" }, `${top.label} ${Math.round(top.confidence)}%`) : h("span", { class: "muted" }, "no labels"),
      h("a", { class: "more-like", href: `/search?like=${encodeURIComponent(hit.id)}`, "aria-label": `More like ${hit.title || "this image"}` }, "More like this")),
  );
}

/** The result count as the status line says it; `lowerBound`: counting stopped at `total`. */
export function matchText(total, lowerBound) {
  if (lowerBound) return `More than ${total.toLocaleString("en")} images match.`;
  return total === 0 ? "No images match." : total === 1 ? "1 image matches." : `${total} images match.`;
}

export function render(main, url, _params, ctx) {
  let state = stateFromUrl(url);
  let hits = [];
  let total = 0;
  let totalIsLowerBound = false; // counting stopped at TRACK_TOTAL: there are more
  let controller = null;
  let typingEntry = false; // the current history entry was pushed by typing that is still going on

  const box = h("input", {
    id: "q", type: "search", name: "q", value: state.q, autocomplete: "off", spellcheck: "false",
    placeholder: 'dog label:cat confidence>=90 after:2026-01-01 unsafe', "aria-describedby": "syntax-help",
  });
  const semantic = h("input", { id: "semantic", type: "checkbox", checked: state.semantic });
  const confidence = h("input", { id: "confidence", type: "range", min: 0, max: 100, step: 5, value: 0 });
  const confidenceValue = h("output", { for: "confidence", id: "confidence-value" }, "any");
  const after = h("input", { id: "after", type: "date" });
  const before = h("input", { id: "before", type: "date" });
  const moderation = h("select", { id: "moderation" },
    h("option", { value: "" }, "Any"), h("option", { value: "safe" }, "Safe only"), h("option", { value: "unsafe" }, "Unsafe only"));
  const sort = h("select", { id: "sort" },
    h("option", { value: "" }, "Best match"), h("option", { value: "newest" }, "Newest"),
    h("option", { value: "oldest" }, "Oldest"), h("option", { value: "title" }, "Title"));
  const facetList = h("ul", { class: "facets", id: "facets" });
  const status = h("p", { class: "result-status", id: "result-status", role: "status", "aria-live": "polite" });
  const likeNote = h("div", { class: "like-note" });
  const grid = h("ul", { class: "grid", id: "results", "aria-label": "Results" });
  const message = h("div", { class: "message", id: "search-message" });
  const more = h("button", { type: "button", class: "load-more", id: "load-more", hidden: true }, "Load more");

  const form = h("form", { class: "search-form", role: "search", onsubmit: (e) => { e.preventDefault(); commit(); } },
    h("label", { for: "q", class: "search-label" }, "Search images"),
    h("div", { class: "search-row" }, box, h("button", { type: "submit" }, "Search")),
    h("p", { id: "syntax-help", class: "hint" },
      "Words search titles, labels and text. Filters: ", h("code", {}, "label:dog"), " ", h("code", {}, 'label:"golden retriever"'),
      " ", h("code", {}, "confidence>=90"), " ", h("code", {}, "after:2026-01-01"), " ", h("code", {}, "before:2026-02-01"),
      " ", h("code", {}, "safe"), " / ", h("code", {}, "unsafe"), "."),
  );
  const filters = h("details", { class: "filters", id: "filters" },
    h("summary", {}, "Filters and labels"),
    h("div", { class: "field check" }, semantic, h("label", { for: "semantic" }, "Search by meaning")),
    h("div", { class: "field" }, h("label", { for: "confidence" }, "Minimum confidence: ", confidenceValue), confidence),
    h("div", { class: "field-row" },
      h("div", { class: "field" }, h("label", { for: "after" }, "From"), after),
      h("div", { class: "field" }, h("label", { for: "before" }, "Before"), before)),
    h("div", { class: "field" }, h("label", { for: "moderation" }, "Moderation"), moderation),
    h("div", { class: "field" }, h("label", { for: "sort" }, "Sort"), sort),
    h("h2", { class: "facet-title", id: "facet-title" }, "Labels"),
    facetList,
  );
  // phones see the results first; the filters fold away under their summary
  filters.open = !window.matchMedia("(max-width: 760px)").matches;
  main.append(h("h1", { class: "sr-only" }, "Search"), form,
    h("div", { class: "search-layout" }, filters, h("section", { class: "results", "aria-labelledby": "result-status" }, status, likeNote, message, grid, more)));

  function syncControls() {
    const read = readQuery(state.q);
    if (box.value.trim() !== state.q) box.value = state.q; // keep a space the user just typed
    semantic.checked = state.semantic;
    confidence.value = String(read.confidence);
    confidenceValue.textContent = read.confidence > 0 ? `${read.confidence}%` : "any";
    after.value = /^\d{4}-\d{2}-\d{2}$/.test(read.after) ? read.after : "";
    before.value = /^\d{4}-\d{2}-\d{2}$/.test(read.before) ? read.before : "";
    moderation.value = read.moderation;
    sort.value = state.sort;
  }

  function renderFacets(facets) {
    clear(facetList);
    const selected = new Set(readQuery(state.q).labels.map((l) => l.toLowerCase()));
    const labels = facets?.labels || [];
    if (!labels.length) {
      facetList.append(h("li", { class: "muted" }, facets ? "No labels in these results." : "Counts appear with results."));
      return;
    }
    if (facets.counted !== undefined && facets.counted < total) {
      // a semantic or "more like this" search counts its closest images only
      facetList.append(h("li", { class: "hint" }, `Among the ${facets.counted} closest images.`));
    }
    for (const { label, count } of labels) {
      const pressed = selected.has(label.toLowerCase());
      facetList.append(h("li", {},
        h("button", {
          type: "button", class: "facet", "aria-pressed": String(pressed), dataset: { label },
          onclick: () => { box.value = toggleLabel(state.q, label); commit(); },
        }, h("span", { class: "facet-name" }, label), h("span", { class: "count" }, String(count)))));
    }
  }

  function renderStatus() {
    const text = matchText(total, totalIsLowerBound);
    status.textContent = hits.length < total ? `${text} Showing ${hits.length}.` : text;
    more.hidden = hits.length >= total;
    announce(text);
  }

  function renderEmpty() {
    const read = readQuery(state.q);
    const tips = [];
    if (read.confidence > 0) tips.push("lower the minimum confidence");
    if (read.labels.length) tips.push("remove a label filter");
    if (read.after || read.before) tips.push("widen the date range");
    if (read.moderation) tips.push("set moderation to Any");
    if (read.words.length && !state.semantic) tips.push("try “Search by meaning”");
    clear(message).append(h("p", {}, state.q || state.like ? "Nothing matches this search." : "No images are indexed yet."),
      h("p", {}, tips.length ? `Try to ${tips.join(", or ")}. ` : "", "Or ", h("a", { href: "/upload" }, "upload images"), "."));
  }

  function renderError(error) {
    clear(message).append(h("div", { class: "error", role: "alert" },
      h("p", {}, h("strong", {}, "The search failed: "), error.detail || String(error)),
      h("p", {}, error.status === 400 || error.status === 422
        ? "Check the query: filters look like label:dog, confidence>=90, after:2026-01-01."
        : "Try again in a moment.", " ",
      h("button", { type: "button", onclick: () => run({ append: false }) }, "Retry"))));
    status.textContent = "";
    more.hidden = true;
  }

  async function run({ append }) {
    if (controller) controller.abort();
    controller = new AbortController();
    const signal = controller.signal;
    const offset = append ? hits.length : 0;
    // a shared link to page 3 shows pages 1-3 at once
    const limit = append ? PAGE_SIZE : PAGE_SIZE * state.page;
    const params = {
      q: state.q, semantic: state.semantic ? "true" : "", like: state.like, sort: state.sort,
      limit, offset, facets: append ? "" : "true", track_total: TRACK_TOTAL,
    };
    main.setAttribute("aria-busy", "true");
    more.disabled = true;
    try {
      const data = await api("/api/search" + query(params), { signal });
      if (!append) {
        hits = [];
        clear(grid);
        clear(message);
        total = data.total;
        renderFacets(data.facets);
      }
      hits.push(...data.hits);
      total = data.total;
      totalIsLowerBound = Boolean(data.total_is_lower_bound);
      grid.append(...data.hits.map(resultCard));
      if (!hits.length) renderEmpty();
      renderStatus();
    } catch (error) {
      if (error.name === "AbortError") return;
      renderError(error);
    } finally {
      if (!signal.aborted) {
        main.removeAttribute("aria-busy");
        more.disabled = false;
      }
    }
  }

  async function showLikeNote() {
    clear(likeNote);
    if (!state.like) return;
    const clearLike = h("a", { href: urlFromState({ ...state, like: "", page: 1 }) }, "show all images");
    likeNote.append(h("p", {}, "Images like ", h("a", { href: `/images/${encodeURIComponent(state.like)}`, id: "like-title" }, "this one"), " — ", clearLike));
    try {
      const doc = await api(`/api/images/${encodeURIComponent(state.like)}`);
      const title = likeNote.querySelector("#like-title");
      if (title) title.textContent = doc.title || doc.id;
    } catch { /* the note still works without the title */ }
  }

  /** The box or a control changed: new history entry (or replace while typing), then search. */
  function go({ typing }) {
    state.page = 1;
    const next = urlFromState(state);
    const here = location.pathname + location.search;
    if (next !== here) history[typing && typingEntry ? "replaceState" : "pushState"]({}, "", next);
    typingEntry = typing;
    syncControls();
    run({ append: false });
  }

  const commit = () => { typed.cancel(); state.q = box.value.trim(); go({ typing: false }); };
  const typed = debounce(() => { state.q = box.value.trim(); go({ typing: true }); }, TYPING_DELAY_MS);

  box.addEventListener("input", typed);
  box.addEventListener("keydown", (e) => { if (e.key === "Escape" && box.value) { box.value = ""; commit(); } });
  semantic.addEventListener("change", () => { state.semantic = semantic.checked; commit(); });
  const slid = debounce(() => { state.q = withConfidence(state.q, Number(confidence.value)); box.value = state.q; go({ typing: false }); }, TYPING_DELAY_MS);
  confidence.addEventListener("input", () => {
    confidenceValue.textContent = Number(confidence.value) > 0 ? `${confidence.value}%` : "any";
    slid();
  });
  after.addEventListener("change", () => { state.q = withDate(state.q, "after", after.value); box.value = state.q; commit(); });
  before.addEventListener("change", () => { state.q = withDate(state.q, "before", before.value); box.value = state.q; commit(); });
  moderation.addEventListener("change", () => { state.q = withModeration(state.q, moderation.value); box.value = state.q; commit(); });
  sort.addEventListener("change", () => { state.sort = sort.value; commit(); });
  more.addEventListener("click", () => {
    state.page += 1;
    history.replaceState({}, "", urlFromState(state));
    run({ append: true });
  });

  syncControls();
  showLikeNote();
  run({ append: false });
  if (!state.q && !state.like) box.focus({ preventScroll: true });

  updatePage = (next) => {
    state = stateFromUrl(next);
    typingEntry = false;
    syncControls();
    showLikeNote();
    run({ append: false });
  };
  return () => {
    updatePage = null;
    if (controller) controller.abort();
    typed.cancel();
    slid.cancel();
  };
}

export function update(url) {
  if (updatePage) updatePage(url);
}
