// Hand-written SVG charts. Colours and fonts are attributes (not CSS) so that a chart exported
// as PNG looks like the one on screen; every number is also drawn as text.

import { s } from "./dom.js";

const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
const INK = "#1d2433";
const MUTED = "#5b6475";
const GRID = "#dde2ea";
export const PALETTE = ["#2458c6", "#e0703a", "#2a9d6f", "#c8407a", "#7b5cd6", "#c89b1c", "#1f8fb0", "#8a5a44", "#5b6475", "#4e9d2d"];

let uid = 0;

function frame(width, height, title, description) {
  uid += 1;
  const titleId = `chart-title-${uid}`;
  const descId = `chart-desc-${uid}`;
  const svg = s("svg", {
    xmlns: "http://www.w3.org/2000/svg", viewBox: `0 0 ${width} ${height}`, width, height,
    role: "img", "aria-labelledby": `${titleId} ${descId}`, class: "chart", "font-family": FONT,
  });
  svg.append(s("title", { id: titleId }, title), s("desc", { id: descId }, description));
  svg.append(s("rect", { x: 0, y: 0, width, height, fill: "#ffffff" }));
  return svg;
}

function text(x, y, content, attrs = {}) {
  return s("text", { x, y, fill: INK, "font-size": 12, ...attrs }, content);
}

function truncate(label, max) {
  return label.length > max ? `${label.slice(0, max - 1)}…` : label;
}

function describe(rows) {
  return rows.map((r) => `${r.label}: ${r.value}`).join(", ") || "no data";
}

/** A link around chart marks when the row has an href (labels go to their search). */
function maybeLink(row, ...children) {
  if (!row.href) return s("g", {}, ...children);
  return s("a", { href: row.href, class: "chart-link", "aria-label": `${row.label}: ${row.value}; search for it` }, ...children);
}

/** Axis ticks for counts from 0 to at least `max`: whole numbers only, 1, 2 or 5 times a power of
 * ten apart, about `target` intervals. Returns the ticks, the top of the axis and the step. */
export function countTicks(max, target = 4) {
  const top = Math.max(1, Math.ceil(max));
  const raw = top / target;
  const power = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * power).find((candidate) => candidate >= raw) ?? 10 * power;
  step = Math.max(1, Math.round(step));
  const axisTop = Math.ceil(top / step) * step;
  const ticks = [];
  for (let tick = 0; tick <= axisTop; tick += step) ticks.push(tick);
  return { ticks, top: axisTop, step };
}

/** About how wide a text of `chars` characters is at `size` px in the charts' font. */
const textWidth = (chars, size = 10) => chars * size * 0.58;

/** Every how many-th label fits along `span` px when each needs `width` px plus a gap. */
function labelStride(count, span, width) {
  const fits = Math.max(1, Math.floor(span / (width + 6)));
  return Math.max(1, Math.ceil(count / fits));
}

/** The "no data" state: the message in the middle of an otherwise empty chart. */
function emptyChart(svg, width, height, message) {
  svg.append(text(width / 2, height / 2, message, { "text-anchor": "middle", fill: MUTED }));
  return svg;
}

/** The plot inside a chart's margins, with a grid line at each count tick (whole numbers,
 * see countTicks), each labelled on the left: returns the margins, the plot's size and the axis
 * top (`max`). */
function plotArea(svg, rows, width, height, { left, right, top, bottom }) {
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const { ticks, top: max } = countTicks(Math.max(...rows.map((r) => r.value)));
  for (const tick of ticks) {
    const y = top + plotHeight * (1 - tick / max);
    svg.append(s("line", { x1: left, x2: width - right, y1: y, y2: y, stroke: GRID }),
      text(left - 4, y + 4, String(tick), { "text-anchor": "end", fill: MUTED, "font-size": 10, class: "tick" }));
  }
  return { left, top, bottom, plotWidth, plotHeight, max };
}

/** An x-axis label centred on `x` but kept inside the chart (the first and last ones would
 * otherwise be cut at the edges). */
function axisLabel(x, y, content, width, attrs = {}) {
  const half = textWidth(String(content).length) / 2;
  const clamped = Math.min(Math.max(x, half + 2), width - half - 2);
  return text(clamped, y, content, { "text-anchor": "middle", "font-size": 10, fill: MUTED, class: "axis-label", ...attrs });
}

/** Horizontal bars, one row per label: rows = [{label, value, text?, href?}]; `text` is what is
 * written beside the bar (default: the value); `max` fixes the scale (100 for percentages). */
export function barChart({ title, rows, width = 560, empty = "No data", max: scale, valueWidth = 56 }) {
  const rowHeight = 26;
  const labelWidth = Math.round(Math.min(150, width * 0.34));
  const height = Math.max(60, 24 + rows.length * rowHeight);
  const svg = frame(width, height, title, describe(rows));
  if (!rows.length) return emptyChart(svg, width, height, empty);
  const max = scale || Math.max(...rows.map((r) => r.value), 1);
  const span = width - labelWidth - valueWidth - 12;
  rows.forEach((row, i) => {
    const y = 12 + i * rowHeight;
    const barWidth = Math.max(row.value > 0 ? 2 : 0, (row.value / max) * span);
    svg.append(maybeLink(row,
      text(labelWidth - 8, y + 15, truncate(row.label, Math.floor(labelWidth / 7)), { "text-anchor": "end" }),
      s("rect", { x: labelWidth, y: y + 3, width: barWidth.toFixed(1), height: rowHeight - 8, rx: 3, fill: row.color || PALETTE[0], class: "bar", "data-label": row.label, "data-value": row.value }),
      text(labelWidth + barWidth + 6, y + 15, row.text ?? String(row.value), { class: "value", "data-label": row.label }),
    ));
  });
  return svg;
}

/** Vertical bars over ordered buckets (histograms): rows = [{label, value}]. With `edges` (one
 * more than the rows: the buckets' bounds) the axis is labelled at the bounds, as histograms
 * are; labels that would overlap are thinned out. */
export function columnChart({ title, rows, width = 560, height = 240, empty = "No data", color = PALETTE[0], edges = null, axisTitle = "" }) {
  const svg = frame(width, height, title, describe(rows));
  if (!rows.length) return emptyChart(svg, width, height, empty);
  const margins = { left: 36, right: 14, top: 20, bottom: axisTitle ? 46 : 34 };
  const { left, top, bottom, plotWidth, plotHeight, max } = plotArea(svg, rows, width, height, margins);
  const slot = plotWidth / rows.length;
  const axisY = height - bottom + 14;
  rows.forEach((row, i) => {
    const barHeight = (row.value / max) * plotHeight;
    const x = left + i * slot + slot * 0.12;
    const barWidth = slot * 0.76;
    svg.append(maybeLink(row,
      s("rect", { x: x.toFixed(1), y: (top + plotHeight - barHeight).toFixed(1), width: barWidth.toFixed(1), height: barHeight.toFixed(1), fill: color, class: "bar", "data-label": row.label, "data-value": row.value }),
      text(x + barWidth / 2, top + plotHeight - barHeight - 4, String(row.value), { "text-anchor": "middle", "font-size": 10, class: "value", "data-label": row.label }),
    ));
  });
  const labels = edges || rows.map((r) => truncate(r.label, 8));
  const at = (i) => (edges ? left + i * slot : left + i * slot + slot / 2);
  const stride = labelStride(labels.length, plotWidth + (edges ? slot : 0), Math.max(...labels.map((l) => textWidth(String(l).length))));
  labels.forEach((label, i) => {
    if (i % stride === 0) svg.append(axisLabel(at(i), axisY, label, width));
  });
  if (axisTitle) svg.append(text(left + plotWidth / 2, height - 6, axisTitle, { "text-anchor": "middle", "font-size": 10, fill: MUTED }));
  return svg;
}

/** A pie with a legend that repeats each value and its share: rows = [{label, value, href?}].
 * Narrow charts put the legend under the pie instead of beside it. */
export function pieChart({ title, rows, width = 560, empty = "No data" }) {
  const shown = rows.filter((r) => r.value > 0);
  const stacked = width < 440;
  const radius = stacked ? Math.min(95, width / 2 - 20) : 95;
  const pieHeight = radius * 2 + 30;
  const legendHeight = shown.length * 22;
  const height = stacked ? pieHeight + legendHeight + 10 : Math.max(220, 30 + legendHeight);
  const svg = frame(width, height, title, describe(rows));
  const total = shown.reduce((sum, r) => sum + r.value, 0);
  if (!total) return emptyChart(svg, width, height, empty);
  const cx = stacked ? width / 2 : 110;
  const cy = stacked ? radius + 15 : height / 2;
  const legendX = stacked ? 12 : 230;
  const legendTop = stacked ? pieHeight : (height - legendHeight) / 2;
  let angle = -Math.PI / 2;
  shown.forEach((row, i) => {
    const color = row.color || PALETTE[i % PALETTE.length];
    const sweep = (row.value / total) * Math.PI * 2;
    let mark;
    if (shown.length === 1) {
      mark = s("circle", { cx, cy, r: radius, fill: color });
    } else {
      const end = angle + sweep;
      const large = sweep > Math.PI ? 1 : 0;
      const p = (a) => `${(cx + radius * Math.cos(a)).toFixed(2)} ${(cy + radius * Math.sin(a)).toFixed(2)}`;
      mark = s("path", { d: `M ${cx} ${cy} L ${p(angle)} A ${radius} ${radius} 0 ${large} 1 ${p(end)} Z`, fill: color, stroke: "#fff", "stroke-width": 1 });
    }
    mark.setAttribute("class", "slice");
    mark.setAttribute("data-label", row.label);
    mark.setAttribute("data-value", row.value);
    angle += sweep;
    const y = legendTop + i * 22 + 14;
    const share = Math.round((row.value / total) * 100);
    svg.append(maybeLink(row, mark,
      s("rect", { x: legendX, y: y - 10, width: 12, height: 12, rx: 2, fill: color }),
      text(legendX + 18, y, truncate(row.label, 26), {}),
      text(width - 8, y, `${row.value} (${share}%)`, { "text-anchor": "end", class: "value", "data-label": row.label }),
    ));
  });
  return svg;
}

/** An area line over time: points = [{label, short?, value}] in order; `short` labels the axis. */
export function lineChart({ title, points, width = 560, height = 240, empty = "No data", color = PALETTE[0] }) {
  const svg = frame(width, height, title, describe(points));
  if (!points.length) return emptyChart(svg, width, height, empty);
  const margins = { left: 40, right: 12, top: 18, bottom: 34 };
  const { left, top, bottom, plotWidth, plotHeight, max } = plotArea(svg, points, width, height, margins);
  const x = (i) => left + (points.length === 1 ? plotWidth / 2 : (i / (points.length - 1)) * plotWidth);
  const y = (v) => top + plotHeight * (1 - v / max);
  const line = points.map((p, i) => `${i ? "L" : "M"} ${x(i).toFixed(1)} ${y(p.value).toFixed(1)}`).join(" ");
  const base = top + plotHeight;
  svg.append(s("path", { d: `${line} L ${x(points.length - 1).toFixed(1)} ${base} L ${x(0).toFixed(1)} ${base} Z`, fill: color, "fill-opacity": 0.18 }),
    s("path", { d: line, fill: "none", stroke: color, "stroke-width": 2 }));
  const names = points.map((p) => String(p.short || p.label));
  const every = labelStride(points.length, plotWidth, Math.max(...names.map((n) => textWidth(n.length))));
  const valuesFit = points.length <= 12 && plotWidth / points.length >= textWidth(String(max).length) + 4;
  points.forEach((p, i) => {
    svg.append(s("circle", { cx: x(i).toFixed(1), cy: y(p.value).toFixed(1), r: 3, fill: color, class: "point", "data-label": p.label, "data-value": p.value },
      s("title", {}, `${p.label}: ${p.value}`)));
    if (valuesFit) svg.append(text(x(i), y(p.value) - 7, String(p.value), { "text-anchor": "middle", "font-size": 10, class: "value", "data-label": p.label }));
    // counted from the end: the latest bucket always has its label (kept inside the chart)
    if ((points.length - 1 - i) % every === 0) svg.append(axisLabel(x(i), height - bottom + 16, names[i], width));
  });
  return svg;
}

/** Words sized by count, laid out left to right in rows: rows = [{label, value, href?}]. */
export function tagCloud({ title, rows, width = 560, empty = "No labels" }) {
  const max = Math.max(...rows.map((r) => r.value), 1);
  const min = Math.min(...rows.map((r) => r.value), max);
  const placed = [];
  let x = 10;
  let line = 0;
  const lineHeight = 40;
  // alphabetical, as tag clouds read; size carries the count
  for (const [i, row] of [...rows].sort((a, b) => a.label.localeCompare(b.label)).entries()) {
    const size = max === min ? 22 : 13 + ((row.value - min) / (max - min)) * 19;
    const estimate = (row.label.length + String(row.value).length + 2) * size * 0.56;
    if (x + estimate > width - 10 && x > 10) { x = 10; line += 1; }
    placed.push({ row, size, x, line, color: PALETTE[i % PALETTE.length] });
    x += estimate + 14;
  }
  const height = Math.max(60, (line + 1) * lineHeight + 16);
  const svg = frame(width, height, title, describe(rows));
  if (!rows.length) return emptyChart(svg, width, height, empty);
  for (const item of placed) {
    const y = 12 + item.line * lineHeight + 26;
    svg.append(maybeLink(item.row,
      text(item.x, y, item.row.label, { "font-size": item.size.toFixed(1), fill: item.color, class: "tag", "data-label": item.row.label, "data-value": item.row.value },
        s("tspan", { "font-size": 10, fill: MUTED, dx: 3, class: "value" }, String(item.row.value)))));
  }
  return svg;
}

/** The chart under a heading (`title`, and `subtitle` lines such as the active filter), as one
 * SVG: what a PNG export shows, so the picture says what it is once it leaves the page. */
export function withHeading(svg, title, subtitles = []) {
  const [, , width, height] = (svg.getAttribute("viewBox") || "0 0 560 240").split(/\s+/).map(Number);
  const lines = subtitles.filter(Boolean);
  const head = 30 + lines.length * 18;
  const fit = (content, size) => truncate(String(content), Math.floor((width - 24) / (size * 0.58)));
  const outer = s("svg", { xmlns: "http://www.w3.org/2000/svg", viewBox: `0 0 ${width} ${height + head}`, width, height: height + head, "font-family": FONT });
  outer.append(s("rect", { x: 0, y: 0, width, height: height + head, fill: "#ffffff" }),
    text(12, 22, fit(title, 16), { "font-size": 16, "font-weight": 600, class: "export-title" }));
  lines.forEach((line, i) => outer.append(text(12, 42 + i * 18, fit(line, 12), { fill: MUTED, class: "export-subtitle" })));
  const chart = svg.cloneNode(true);
  for (const [name, value] of Object.entries({ x: 0, y: head, width, height })) chart.setAttribute(name, value);
  outer.append(chart);
  return outer;
}

/** Draw the chart (under its heading, see withHeading) on a canvas at 2x and download it as a
 * PNG. */
export async function downloadPng(svg, filename, { title = "", subtitles = [] } = {}) {
  const drawn = title ? withHeading(svg, title, subtitles) : svg.cloneNode(true);
  const [, , width, height] = (drawn.getAttribute("viewBox") || "0 0 560 240").split(/\s+/).map(Number);
  drawn.setAttribute("width", width);
  drawn.setAttribute("height", height);
  const source = new XMLSerializer().serializeToString(drawn);
  const image = new Image();
  image.decoding = "async";
  image.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(source)}`;
  await image.decode();
  const scale = 2;
  const canvas = document.createElement("canvas");
  canvas.width = width * scale;
  canvas.height = height * scale;
  const context = canvas.getContext("2d");
  context.fillStyle = "#ffffff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.drawImage(image, 0, 0, canvas.width, canvas.height);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Big numbers in a row of tiles: items = [{label, value, tone?}]. A label wider than its tile
 * wraps onto a second line instead of running into its neighbour. */
export function statTiles({ title, items, width = 560 }) {
  const slot = width / Math.max(items.length, 1);
  const wrapped = items.map((item) => wrapWords(item.label, Math.max(4, Math.floor((slot - 8) / textWidth(1, 12)))));
  const height = 82 + 15 * Math.max(...wrapped.map((lines) => lines.length), 1);
  const svg = frame(width, height, title, items.map((i) => `${i.label}: ${i.value}`).join(", "));
  items.forEach((item, i) => {
    const x = i * slot + slot / 2;
    const fill = item.tone === "bad" && Number(item.value) > 0 ? "#b3261e" : INK;
    svg.append(
      text(x, 48, String(item.value), { "text-anchor": "middle", "font-size": 28, "font-weight": 600, fill, class: "value stat", "data-label": item.label, "data-value": item.value }),
      s("text", { x, y: 74, "text-anchor": "middle", fill: MUTED, "font-size": 12, class: "stat-label" },
        ...wrapped[i].map((line, n) => s("tspan", { x, dy: n ? 15 : 0 }, line))),
    );
  });
  return svg;
}

/** Words in lines of at most `max` characters (a longer word gets a line of its own). */
function wrapWords(label, max) {
  const lines = [];
  for (const word of String(label).split(/\s+/)) {
    const last = lines.length - 1;
    if (last >= 0 && (lines[last] + " " + word).length <= max) lines[last] += " " + word;
    else lines.push(word);
  }
  return lines;
}
