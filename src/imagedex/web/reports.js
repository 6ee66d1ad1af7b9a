// Reports: the saved reports with their schedule, previews of each format, run now, history;
// admins create and delete them. The server validates every field and says what is wrong.

import { api } from "./api.js";
import { announce, clear, field, formatDate, h } from "./dom.js";

const FORMATS = ["pdf", "xlsx", "png", "csv"];
const path = (name) => `/api/reports/${encodeURIComponent(name)}`;

export function render(main, _url, _params, { session }) {
  const isAdmin = !session.authRequired || session.role === "admin";
  const status = h("p", { class: "status", id: "reports-status", role: "status" });
  const list = h("div", { id: "reports-list" });
  main.append(h("h1", {}, "Reports"), status, list);
  if (isAdmin) main.append(createForm());

  function fail(error) {
    status.textContent = error.message;
    status.dataset.tone = "error";
  }

  async function refresh() {
    try {
      const { reports } = await api("/api/reports");
      clear(list).append(reports.length ? table(reports) : h("p", { class: "muted" }, "No reports yet."));
    } catch (error) {
      fail(error);
    }
  }

  const COLUMNS = ["Report", "Query", "Schedule", "Next run", "Recipients", "Files", "Actions"];

  function table(reports) {
    // a phone stacks each row into a card (style.css: table.stacking), so the buttons stay on screen
    return h("div", { class: "table-box" }, h("table", { class: "reports stacking" },
      h("thead", {}, h("tr", {}, ...COLUMNS.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, ...reports.map(row))));
  }

  function row(report) {
    const cell = (column, attrs, ...content) => h("td", { ...attrs, "data-title": COLUMNS[column] }, ...content);
    const history = h("td", { colspan: 7, class: "history", hidden: true });
    const actions = cell(6, { class: "row-actions" },
      h("button", { type: "button", onclick: () => showHistory(report.name, history) }, "History"),
      isAdmin && h("button", { type: "button", "data-run": report.name, onclick: () => run(report.name) }, "Run now"),
      isAdmin && h("button", { type: "button", class: "danger", onclick: () => remove(report.name) }, "Delete"));
    const files = report.formats.map((f) =>
      h("a", { href: `${path(report.name)}/preview?format=${f}`, target: "_blank", rel: "noopener", class: "preview" }, f.toUpperCase()));
    const main = h("tr", { "data-report": report.name },
      h("th", { scope: "row" }, report.title || report.name, h("div", { class: "muted" }, report.name)),
      cell(1, {}, report.query || "(every image)", h("div", { class: "muted" }, `window ${report.window}`)),
      cell(2, {}, report.schedule ? `${report.schedule} (${report.timezone})` : "on demand", report.enabled ? "" : " — paused"),
      cell(3, {}, report.next_run ? formatDate(report.next_run) : "—"),
      cell(4, { class: "targets" }, report.recipients.join(", ") || "—"),
      cell(5, {}, ...files.flatMap((a) => [a, " "])),
      actions);
    return [main, h("tr", { class: "history-row" }, history)];
  }

  async function showHistory(name, cell) {
    try {
      const { runs } = await api(`${path(name)}/history`);
      clear(cell).append(runs.length
        ? h("ul", {}, ...runs.map((r) => h("li", {},
            `${formatDate(r.scheduled_for)}: ${r.status}, ${r.total} images`,
            r.delivery_status.length ? ` — ${r.delivery_status.map((d) => `${d.target}: ${d.status}`).join(", ")}` : "",
            r.error ? ` (${r.error})` : "")))
        : h("p", { class: "muted" }, "Not run yet."));
      cell.hidden = false;
    } catch (error) {
      fail(error);
    }
  }

  async function run(name) {
    try {
      const result = await api(`${path(name)}/run`, { method: "POST" });
      status.dataset.tone = result.status === "ok" ? "ok" : "error";
      status.textContent = `${name}: ${result.total} matching images, ${result.deliveries.length} deliveries queued${result.error ? `; ${result.error}` : ""}`;
      announce(status.textContent);
      refresh();
    } catch (error) {
      fail(error);
    }
  }

  async function remove(name) {
    if (!window.confirm(`Delete report ${name}?`)) return;
    try {
      await api(path(name), { method: "DELETE" });
      status.textContent = `deleted ${name}`;
      refresh();
    } catch (error) {
      fail(error);
    }
  }

  function createForm() {
    const input = (id, attrs = {}) => h("input", { id, name: id, type: "text", ...attrs });
    const formats = h("fieldset", {}, h("legend", {}, "Formats"),
      ...FORMATS.map((f) => h("label", {}, h("input", { type: "checkbox", name: "format", value: f, checked: f === "pdf" }), ` ${f.toUpperCase()}`)));
    const form = h("form", { id: "report-form", class: "report-form" },
      h("h2", {}, "New report"),
      field("report-name", "Name", input("report-name", { required: true, pattern: "[a-z0-9][a-z0-9_-]*", maxlength: 63 }), "lower-case letters, digits, - and _"),
      field("report-title", "Title", input("report-title", { maxlength: 200 })),
      field("report-query", "Query", input("report-query", { placeholder: "label:dog confidence>=80" }), "empty: every image"),
      formats,
      field("report-schedule", "Schedule", input("report-schedule", { placeholder: "weekly@mon 08:00" }), "hourly, daily@08:00, weekly@mon 08:00, monthly@1 08:00 or cron; empty: on demand"),
      field("report-timezone", "Time zone", input("report-timezone", { placeholder: "UTC" })),
      field("report-window", "Window", input("report-window", { value: "all" }), "24h, 7d, 2w or all"),
      field("report-recipients", "Recipients", h("textarea", { id: "report-recipients", rows: 3 }), "one per line: mailto:, slack:, webhook:, folder:"),
      h("button", { type: "submit" }, "Create report"));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = (id) => form.querySelector(`#${id}`).value.trim();
      const body = {
        title: value("report-title"),
        query: value("report-query"),
        formats: [...form.querySelectorAll("input[name=format]:checked")].map((c) => c.value),
        schedule: value("report-schedule"),
        timezone: value("report-timezone"),
        window: value("report-window") || "all",
        recipients: value("report-recipients").split("\n").map((t) => t.trim()).filter(Boolean),
      };
      try {
        await api(path(value("report-name")), { method: "POST", json: body });
        status.dataset.tone = "ok";
        status.textContent = `created ${value("report-name")}`;
        form.reset();
        refresh();
      } catch (error) {
        fail(error);
      }
    });
    return form;
  }

  refresh();
}
