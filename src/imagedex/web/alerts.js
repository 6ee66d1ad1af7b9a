// Alerts: the rules with their mute state and last firing, and the history of alerts with the
// status of their deliveries; admins create (label, moderation, text), mute, unmute and delete
// rules. The server validates every field and says what is wrong.

import { api, query } from "./api.js";
import { announce, clear, field, formatDate, h } from "./dom.js";

const KINDS = ["label", "moderation", "text"];
const MUTE_PERIODS = [["1h", "1 hour"], ["8h", "8 hours"], ["24h", "24 hours"], ["", "until unmuted"]];
const HISTORY_POLL_MS = 5000; // deliveries go out in the background: their status changes
const path = (name) => `/api/alerts/${encodeURIComponent(name)}`;
// wide tables scroll inside their box, so the page itself never scrolls sideways on a phone
// (positioned, so that the visually hidden labels inside are clipped by it too)
const scroller = (table) => h("div", { style: { overflowX: "auto", maxWidth: "100%", position: "relative" } }, table);
const headings = (...titles) => h("thead", {}, h("tr", {}, ...titles.map((t) => h("th", { scope: "col" }, t))));

function duration(seconds) {
  for (const [unit, size] of [["d", 86400], ["h", 3600], ["m", 60]]) {
    if (seconds >= size && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
}

function mutedText(rule) {
  if (!rule.muted) return "no";
  return rule.muted_until === "forever" ? "muted until unmuted" : `muted until ${formatDate(rule.muted_until)}`;
}

export function render(main, _url, _params, { session }) {
  const isAdmin = !session.authRequired || session.role === "admin";
  const status = h("p", { class: "status", id: "alerts-status", role: "status", "aria-live": "polite" });
  const rulesBox = h("div", { id: "alert-rules" });
  const historyBox = h("div", { id: "alert-history", "aria-busy": "false" });
  main.append(h("h1", {}, "Alerts"), status,
    h("section", { "aria-labelledby": "alert-rules-title" }, h("h2", { id: "alert-rules-title" }, "Rules"), rulesBox));
  if (isAdmin) main.append(createForm());
  main.append(h("section", { "aria-labelledby": "alert-history-title" },
    h("h2", { id: "alert-history-title" }, "History ",
      h("button", { type: "button", class: "small", onclick: () => refresh() }, "Refresh")),
    historyBox));

  function say(text, tone) {
    status.dataset.tone = tone;
    status.textContent = text;
    announce(text);
  }
  const fail = (error) => say(error.message, "error");

  async function refresh() {
    await Promise.all([loadRules(), loadHistory()]);
  }

  const RULE_COLUMNS = ["Rule", "Kind", "Condition", "Targets", "Muted", "Last fired", "Actions"];
  const HISTORY_COLUMNS = ["Fired at", "Rule", "Images or value", "Suppressed", "Delivery"];

  async function loadRules() {
    try {
      const { rules } = await api("/api/alerts");
      clear(rulesBox).append(rules.length
        ? scroller(h("table", { class: "alert-rules stacking" },
            headings(...RULE_COLUMNS),
            h("tbody", {}, ...rules.map(ruleRow))))
        : h("p", { class: "muted" }, "No alert rules yet."));
    } catch (error) {
      fail(error);
    }
  }

  /** Rules fire while the page is open: with each history poll, the "Last fired" cells follow
   * (in place, so a mute period being chosen is not lost); a rule added or removed elsewhere
   * redraws the table. */
  async function refreshLastFired() {
    const { rules } = await api("/api/alerts");
    const rows = [...rulesBox.querySelectorAll("tr[data-rule]")];
    const shown = rows.map((row) => row.dataset.rule).join("\n");
    if (shown !== rules.map((r) => r.name).join("\n")) return loadRules();
    for (const rule of rules) {
      const cell = rulesBox.querySelector(`tr[data-rule="${CSS.escape(rule.name)}"] td.last-fired`);
      const text = lastFiredText(rule);
      if (cell && cell.textContent !== text) cell.textContent = text;
    }
  }

  const lastFiredText = (rule) => (rule.last_fired_at ? formatDate(rule.last_fired_at) : "never");

  function ruleRow(rule) {
    // data-title names each cell's column where a phone stacks the row into a card
    const cell = (column, attrs, ...content) => h("td", { ...attrs, "data-title": RULE_COLUMNS[column] }, ...content);
    return h("tr", { "data-rule": rule.name, "data-muted": String(rule.muted) },
      h("th", { scope: "row" }, rule.name, rule.enabled ? "" : h("div", { class: "muted" }, "disabled"),
        rule.description && h("div", { class: "muted" }, rule.description)),
      cell(1, {}, rule.kind),
      cell(2, {}, rule.summary, h("div", { class: "muted" }, rule.throttle ? `at most one alert per ${duration(rule.throttle)}` : "every match")),
      cell(3, { class: "targets" }, ...rule.actions.flatMap((t, i) => [i ? h("br") : null, t])),
      cell(4, { class: "muted-state" }, mutedText(rule)),
      cell(5, { class: "last-fired" }, lastFiredText(rule)),
      cell(6, { class: "row-actions" }, isAdmin && muteControls(rule),
        isAdmin && h("button", { type: "button", class: "danger", onclick: () => remove(rule.name) }, "Delete")));
  }

  function muteControls(rule) {
    if (rule.muted) {
      return h("button", { type: "button", onclick: () => change(rule.name, "unmute") }, "Unmute");
    }
    const id = `mute-${rule.name}`;
    const select = h("select", { id, name: "period" },
      ...MUTE_PERIODS.map(([value, text]) => h("option", { value }, text)));
    return h("span", { class: "mute" },
      h("label", { for: id, class: "sr-only" }, `Mute ${rule.name} for`), select, " ",
      h("button", { type: "button", onclick: () => change(rule.name, "mute", { period: select.value || null }) }, "Mute"),
      " ");
  }

  async function change(name, action, json) {
    try {
      const rule = await api(`${path(name)}/${action}`, { method: "POST", json });
      say(`${name}: ${rule.muted ? mutedText(rule) : "unmuted"}`, "ok");
      await loadRules();
      rulesBox.querySelector(`tr[data-rule="${CSS.escape(name)}"] button`)?.focus();
    } catch (error) {
      fail(error);
    }
  }

  async function remove(name) {
    if (!window.confirm(`Delete alert rule ${name}?`)) return;
    try {
      await api(path(name), { method: "DELETE" });
      say(`deleted ${name}`, "ok");
      loadRules();
    } catch (error) {
      fail(error);
    }
  }

  async function loadHistory() {
    historyBox.setAttribute("aria-busy", "true");
    try {
      const { alerts } = await api(`/api/alerts/history${query({ limit: 100 })}`);
      clear(historyBox).append(alerts.length
        ? scroller(h("table", { class: "alert-history stacking" },
            headings(...HISTORY_COLUMNS),
            h("tbody", {}, ...alerts.map(historyRow))))
        : h("p", { class: "muted" }, "No alerts yet."));
    } catch (error) {
      fail(error);
    } finally {
      historyBox.setAttribute("aria-busy", "false");
    }
  }

  function historyRow(alert) {
    const what = alert.doc_ids.length
      ? alert.doc_ids.flatMap((id, i) => [i ? ", " : null, h("a", { href: `/images/${encodeURIComponent(id)}` }, id)])
      : alert.value !== null ? `${alert.value}${alert.threshold !== null ? ` (threshold ${alert.threshold})` : ""}` : "—";
    const deliveries = alert.deliveries.map((d) =>
      h("li", {}, `${d.target}: ${d.status}`, d.attempts > 1 ? `, ${d.attempts} attempts` : "", d.last_error ? ` (${d.last_error})` : ""));
    const cell = (column, attrs, ...content) => h("td", { ...attrs, "data-title": HISTORY_COLUMNS[column] }, ...content);
    return h("tr", { "data-alert": alert.id, "data-rule": alert.rule, "data-status": alert.status },
      cell(0, {}, formatDate(alert.fired_at)),
      h("th", { scope: "row" }, alert.rule, h("div", { class: "muted" }, alert.subject)),
      cell(2, {}, what),
      cell(3, {}, String(alert.suppressed)),
      cell(4, { class: "delivery" }, h("strong", {}, alert.status), deliveries.length ? h("ul", {}, deliveries) : null));
  }

  function createForm() {
    const input = (id, attrs = {}) => h("input", { id, name: id, type: "text", "aria-describedby": "alert-form-error", ...attrs });
    const error = h("p", { id: "alert-form-error", class: "error", role: "alert", hidden: true });
    const kind = h("select", { id: "alert-kind", name: "alert-kind" }, ...KINDS.map((k) => h("option", { value: k }, k)));
    const byKind = {
      label: [field("alert-label", "Label", input("alert-label", { placeholder: "dog" }), "matches its parents and aliases too")],
      moderation: [field("alert-moderation", "Moderation label", input("alert-moderation"), "empty: any moderation label")],
      text: [field("alert-pattern", "Text pattern", input("alert-pattern", { placeholder: "invoice" }), "in the recognized text and title"),
        h("label", { class: "check" }, h("input", { type: "checkbox", id: "alert-regex" }), " regular expression")],
    };
    const showKind = () => {
      for (const [name, parts] of Object.entries(byKind)) for (const part of parts) part.hidden = name !== kind.value;
    };
    kind.addEventListener("change", showKind);
    const form = h("form", { id: "alert-form", novalidate: true },
      h("h2", {}, "New alert rule"),
      error,
      field("alert-name", "Name", input("alert-name", { required: true, maxlength: 64 }), "lower-case letters, digits, - and _"),
      field("alert-kind", "Kind", kind),
      ...Object.values(byKind).flat(),
      field("alert-confidence", "Minimum confidence (%)",
        input("alert-confidence", { type: "number", min: 0, max: 100, step: "any", value: 50 })),
      field("alert-targets", "Targets",
        h("textarea", { id: "alert-targets", rows: 3, "aria-describedby": "alert-form-error" }), "one per line: mailto:, slack:, webhook:"),
      field("alert-throttle", "Throttle", input("alert-throttle", { value: "1h" }), "at most one alert per period: 90s, 15m, 1h, 1d; 0 for every match"),
      h("button", { type: "submit" }, "Create rule"));
    showKind();
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const value = (id) => form.querySelector(`#${id}`).value.trim();
      const name = value("alert-name");
      const body = {
        kind: kind.value,
        label: value("alert-label"),
        moderation_label: value("alert-moderation"),
        pattern: form.querySelector("#alert-pattern").value,
        regex: form.querySelector("#alert-regex").checked,
        min_confidence: Number(value("alert-confidence") || 0),
        actions: value("alert-targets").split("\n").map((t) => t.trim()).filter(Boolean),
        throttle: value("alert-throttle") || "0",
      };
      try {
        if (!name) throw new Error("the rule needs a name");
        await api(path(name), { method: "POST", json: body });
        error.hidden = true;
        say(`created ${name}`, "ok");
        form.reset();
        showKind();
        loadRules();
      } catch (failure) {
        error.textContent = failure.message;
        error.hidden = false;
      }
    });
    return form;
  }

  refresh();
  const timer = setInterval(() => {
    loadHistory();
    refreshLastFired().catch(() => { /* the next poll tries again */ });
  }, HISTORY_POLL_MS);
  return () => clearInterval(timer);
}
