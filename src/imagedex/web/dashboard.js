// The dashboard: every panel from one /api/dashboard answer, one filter bar for all of them.

import { api, query } from "./api.js";
import { announce, append, clear, debounce, formatDate, h } from "./dom.js";
import { barChart, columnChart, downloadPng, lineChart, pieChart, statTiles, tagCloud } from "./charts.js";
import { labelToken, readQuery, withDate } from "./querytext.js";

const INTERVALS = ["minute", "hour", "day", "week", "month"];

function filtersFromUrl(url) {
  const p = url.searchParams;
  const interval = p.get("interval") || "day";
  return { q: p.get("q") || "", interval: INTERVALS.includes(interval) ? interval : "day" };
}

function labelHref(label, filters) {
  const kept = filters.q ? `${filters.q} ` : "";
  return "/search" + query({ q: `${kept}${labelToken(label)}`.trim() });
}

const count = (row) => Number(row.count ?? row.value ?? 0);

function shortTime(iso, interval) {
  const text = String(iso || "");
  if (interval === "minute" || interval === "hour") return text.slice(11, 16) || text;
  if (interval === "month") return text.slice(0, 7);
  return text.slice(5, 10) || text;
}

/** What an exported PNG says under its title, so that it still makes sense out of the page. */
function exportLines(id, filters, total) {
  const when = `exported ${new Date().toLocaleString()}`;
  if (id === "ingest") return ["Whole deployment (the filters do not apply)", when];
  const images = `${total} image${total === 1 ? "" : "s"}`;
  const per = id === "over-time" ? ` · per ${filters.interval}` : "";
  return [`Filter: ${filters.q || "none (every image)"}`, `${images}${per} · ${when}`];
}

function panel(id, title, csvName, filters, total, ...content) {
  const headingId = `panel-${id}-title`;
  const section = h("section", { class: "panel", id: `panel-${id}`, "aria-labelledby": headingId, dataset: { panel: id } });
  const png = h("button", { type: "button", class: "small", "aria-label": `Download ${title} as PNG` }, "PNG");
  png.addEventListener("click", async () => {
    const svg = section.querySelector("svg.chart");
    if (!svg) return;
    png.disabled = true;
    try {
      await downloadPng(svg, `imagedex-${id}.png`, { title, subtitles: exportLines(id, filters, total) });
    } finally {
      png.disabled = false;
    }
  });
  const csv = h("a", {
    class: "button small", href: `/api/dashboard/${csvName}.csv` + query({ q: filters.q, interval: filters.interval }),
    download: `imagedex-${csvName}.csv`, "aria-label": `Download ${title} data as CSV`,
  }, "CSV");
  section.append(h("div", { class: "panel-head" }, h("h2", { id: headingId }, title), h("div", { class: "panel-actions" }, png, csv)));
  append(section, content);
  return section;
}

/** The whole deployment's queue, throughput and failures (the filters do not apply here). */
function ingestPanel(ingest, width) {
  const queue = ingest.queue || {};
  const throughput = ingest.throughput || {};
  const failures = ingest.recent_failures || [];
  const perMinute = (throughput.per_minute || []).map((b) => ({ label: String(b.start), short: shortTime(b.start, "minute"), value: count(b) }));
  return [
    statTiles({ title: "Queue, throughput and failures", width, items: [
      { label: "queued", value: queue.visible ?? 0 },
      { label: "in progress", value: queue.in_flight ?? 0 },
      { label: "dead letters", value: ingest.dead_letters ?? queue.dead ?? 0, tone: "bad" },
      { label: "indexed last hour", value: throughput.last_hour ?? 0 },
    ] }),
    lineChart({ title: "Images indexed per minute, last hour", points: perMinute, width, height: 180, empty: "Nothing indexed recently" }),
    failures.length
      ? h("details", {}, h("summary", {}, `Recent failures (${failures.length})`),
        h("ul", { class: "plain" }, failures.map((f) => h("li", {}, `${formatDate(f.failed_at)}: ${f.error}`))))
      : null,
    h("p", { class: "hint" }, "Whole deployment, not filtered. Dead letters are images the worker gave up on: ", h("code", {}, "imagedex dlq list"), " shows them."),
  ];
}

/** The people on the most images in range (hidden people are not sent); each bar links to
 * their photos within the same filters. */
function peoplePanel(data, filters, width) {
  const rows = (data.people || []).map((p) => ({
    label: p.name || `Unnamed #${p.id}`,
    value: count(p),
    href: "/search" + query({ q: `${filters.q} person:${p.id}`.trim() }),
  }));
  return [
    barChart({ title: "People on the most images", rows, width, empty: "No people in these images" }),
    data.people_error
      ? h("p", { class: "error" }, data.people_error)
      : h("p", { class: "hint" }, "Click a person for their photos. ", h("a", { href: "/people" }, "All people"),
        " (faces are grouped into people when face recognition is on)."),
  ];
}

export function render(main, url, _params, ctx) {
  let filters = filtersFromUrl(url);
  let controller = null;
  const box = h("input", { id: "dash-q", type: "search", value: filters.q, placeholder: "label:dog confidence>=90 after:2026-01-01", "aria-describedby": "dash-help" });
  const after = h("input", { id: "dash-after", type: "date" });
  const before = h("input", { id: "dash-before", type: "date" });
  const interval = h("select", { id: "dash-interval" }, INTERVALS.map((i) => h("option", { value: i }, `per ${i}`)));
  const status = h("p", { class: "result-status", id: "dash-status", role: "status", "aria-live": "polite" });
  const panels = h("div", { class: "panels", id: "panels" });

  const form = h("form", { class: "filter-bar", "aria-label": "Dashboard filters", onsubmit: (e) => { e.preventDefault(); apply(); } },
    h("div", { class: "field grow" }, h("label", { for: "dash-q" }, "Filter"), box),
    h("div", { class: "field" }, h("label", { for: "dash-after" }, "From"), after),
    h("div", { class: "field" }, h("label", { for: "dash-before" }, "Before"), before),
    h("div", { class: "field" }, h("label", { for: "dash-interval" }, "Images over time"), interval),
    h("div", { class: "field actions" }, h("button", { type: "submit" }, "Apply"), h("button", { type: "button", class: "secondary", onclick: () => load() }, "Refresh")),
    h("p", { id: "dash-help", class: "hint" }, "Same syntax as search; every panel uses these filters. Click a label to search for it."),
  );
  main.append(h("h1", {}, "Dashboard"), form, status, panels);

  function sync() {
    box.value = filters.q;
    const read = readQuery(filters.q);
    after.value = /^\d{4}-\d{2}-\d{2}$/.test(read.after) ? read.after : "";
    before.value = /^\d{4}-\d{2}-\d{2}$/.test(read.before) ? read.before : "";
    interval.value = filters.interval;
  }

  function apply() {
    filters = { q: box.value.trim(), interval: interval.value };
    const next = "/dashboard" + query({ q: filters.q, interval: filters.interval === "day" ? "" : filters.interval });
    if (next !== location.pathname + location.search) history.pushState({}, "", next);
    sync();
    load();
  }

  after.addEventListener("change", () => { box.value = withDate(box.value, "after", after.value); apply(); });
  before.addEventListener("change", () => { box.value = withDate(box.value, "before", before.value); apply(); });
  interval.addEventListener("change", apply);

  let lastData = null;
  let drawnWidth = 0;
  // charts are drawn at the panel's own width so that their text stays readable on phones
  const chartWidth = () => Math.round(Math.min(560, Math.max(260, panels.clientWidth - 30)));

  function draw(data) {
    lastData = data;
    const width = chartWidth();
    drawnWidth = width;
    clear(panels);
    const overTime = (data.over_time || []).map((b) => ({ label: String(b.start), short: shortTime(b.start, filters.interval), value: count(b) }));
    const top = (data.top_labels || []).map((r) => ({ label: r.label, value: count(r), href: labelHref(r.label, filters) }));
    const confidence = (data.confidence || []).map((b) => ({ label: `${b.low}–${b.high}`, value: count(b) }));
    const edges = (data.confidence || []).length ? [...data.confidence.map((b) => b.low), data.confidence.at(-1).high] : null;
    const moderation = data.moderation || {};
    const ingest = data.ingest || {};
    const totalImages = data.total ?? overTime.reduce((sum, b) => sum + b.value, 0);
    // an image shows several labels: each label's part of the images, not slices of one whole
    const shares = top.slice(0, 10).map((r) => {
      const percent = totalImages ? (100 * r.value) / totalImages : 0;
      return { ...r, value: Math.round(percent * 10) / 10, count: r.value, text: `${Math.round(percent)}% (${r.value})` };
    });

    panels.append(
      panel("over-time", "Images over time", "over_time", filters, totalImages,
        lineChart({ title: `Images per ${filters.interval}`, points: overTime, width, empty: "No images in this range" })),
      panel("top-labels", "Top labels", "top_labels", filters, totalImages, barChart({ title: "Top labels (images per label)", rows: top, width, empty: "No labels yet" })),
      panel("label-share", "Share of images per label", "top_labels", filters, totalImages,
        barChart({ title: `Part of the ${totalImages} images that show each label (%); an image can show several`, rows: shares, width, max: 100, valueWidth: 76, empty: "No labels yet" })),
      panel("tag-cloud", "Tag cloud", "top_labels", filters, totalImages, tagCloud({ title: "Labels sized by how many images show them", rows: top, width })),
      panel("confidence", "Confidence distribution", "confidence", filters, totalImages,
        columnChart({ title: "Images by their best label's confidence (%)", rows: confidence, edges, axisTitle: "best label's confidence (%)", width, empty: "No labelled images" })),
      panel("moderation", "Moderation", "moderation", filters, totalImages,
        pieChart({ title: "Safe and unsafe images", width, rows: [
          { label: "safe", value: Number(moderation.safe || 0), color: "#2a9d6f", href: "/search" + query({ q: `${filters.q} safe`.trim() }) },
          { label: "unsafe", value: Number(moderation.unsafe || 0), color: "#b3261e", href: "/search" + query({ q: `${filters.q} unsafe`.trim() }) },
        ], empty: "No images" }),
        (moderation.labels || []).length
          ? barChart({ title: "Moderation labels", width, rows: moderation.labels.map((r) => ({ label: r.label, value: count(r), color: "#b3261e" })) })
          : h("p", { class: "muted" }, "No moderation labels detected.")),
      panel("people", "People", "people", filters, totalImages, ...peoplePanel(data, filters, width)),
      panel("ingest", "Ingest health", "ingest", filters, totalImages, ingestPanel(ingest, width)),
    );
    const text = `${totalImages} image${totalImages === 1 ? "" : "s"} in the dashboard's range.`;
    status.textContent = text;
  }

  async function load() {
    if (controller) controller.abort();
    controller = new AbortController();
    const signal = controller.signal;
    main.setAttribute("aria-busy", "true");
    try {
      const data = await api("/api/dashboard" + query({ q: filters.q, interval: filters.interval }), { signal });
      draw(data);
      announce(status.textContent);
    } catch (error) {
      if (error.name === "AbortError") return;
      clear(panels).append(h("div", { class: "error", role: "alert" },
        h("p", {}, h("strong", {}, "The dashboard could not load: "), error.detail || String(error)),
        h("p", {}, error.status === 400 || error.status === 422 ? "Check the filter syntax (label:dog confidence>=90 after:2026-01-01)." : "Try Refresh in a moment.")));
      status.textContent = "";
    } finally {
      if (!signal.aborted) main.removeAttribute("aria-busy");
    }
  }

  const onResize = debounce(() => { if (lastData && chartWidth() !== drawnWidth) draw(lastData); }, 150);
  window.addEventListener("resize", onResize);

  sync();
  load();
  updatePage = (next) => { filters = filtersFromUrl(next); sync(); load(); };
  return () => {
    updatePage = null;
    window.removeEventListener("resize", onResize);
    onResize.cancel();
    if (controller) controller.abort();
  };
}

let updatePage = null;
export function update(url) {
  if (updatePage) updatePage(url);
}
