// The image page's labels: each with its confidence and where it comes from (model, custom,
// person); for editors, corrections (add, remove for good) and "teach a label from this image".

import { api, query } from "./api.js";
import { announce, append, clear, h } from "./dom.js";
import { labelToken } from "./querytext.js";

const searchHref = (label) => "/search" + query({ q: labelToken(label) });

const SOURCES = {
  model: "recognised by a model",
  custom: "a label taught by example",
  person: "added by a person",
};

function confidenceBar(value) {
  const bar = h("span", { class: "bar-fill" });
  bar.style.width = `${Math.max(0, Math.min(100, value))}%`;
  return h("span", { class: "confidence" }, h("span", { class: "bar-track", "aria-hidden": "true" }, bar), h("span", { class: "number" }, `${value.toFixed(1)}%`));
}

function sourceTag(source) {
  if (!source) return null;
  return h("span", { class: "muted source", title: SOURCES[source] || source, dataset: { source } }, source);
}

function labelRows(doc, sources, onRemove) {
  const labels = [...(doc.labels || [])].sort((a, b) => b.confidence - a.confidence);
  if (!labels.length) return h("p", { class: "muted" }, "No labels were recognised.");
  return h("ul", { class: "labels", id: "labels" }, labels.map((label) =>
    h("li", { class: "label-row", dataset: { label: label.label, source: sources.get(label.label.toLowerCase()) || "" } },
      h("div", { class: "label-head" },
        h("span", {},
          h("a", { href: searchHref(label.label), class: "label-name" }, label.label), " ",
          sourceTag(sources.get(label.label.toLowerCase()))),
        h("span", {},
          confidenceBar(Number(label.confidence) || 0),
          onRemove ? [" ", h("button", { type: "button", class: "small remove-label", "aria-label": `Remove ${label.label}`, onclick: () => onRemove(label.label) }, "Remove")] : null)),
      label.parents?.length
        ? h("div", { class: "parents" }, h("span", { class: "sr-only" }, "Parents: "),
          label.parents.flatMap((parent, i) => [i ? " › " : "", h("a", { href: searchHref(parent) }, parent)]))
        : null,
      label.instances?.length ? h("div", { class: "hint" }, `${label.instances.length} located in the image`) : null)));
}

/** A one-field form: a text box, a button, and the handler called with the trimmed text. */
function oneFieldForm(id, label, button, hint, onSubmit, list) {
  const input = h("input", { id, name: id, type: "text", required: true, maxlength: 100, autocomplete: "off", list: list ? `${id}-names` : null });
  const form = h("form", { class: "label-form", id: `${id}-form` },
    h("label", { for: id }, label), " ", input, " ",
    h("button", { type: "submit", class: "small" }, button),
    list ? h("datalist", { id: `${id}-names` }, list.map((name) => h("option", { value: name }))) : null,
    h("p", { class: "hint" }, hint));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    if (await onSubmit(text)) input.value = "";
  });
  return form;
}

function teachMessage(done) {
  if (done.state === "collecting") {
    const left = done.needed - done.examples;
    return `${done.name}: ${done.examples} of ${done.needed} examples. Teach it from ${left} more image${left === 1 ? "" : "s"} and it is applied to the collection.`;
  }
  return done.new
    ? `Taught ${done.name} from ${done.examples} examples; the collection is being labelled in the background.`
    : `${done.name} now has ${done.examples} examples and was retrained; the collection is being labelled again.`;
}

/**
 * The Labels section's content. `editable`: the corrections and teaching controls are shown
 * (the API checks the role again).
 */
export function labelsSection(doc, editable) {
  const root = h("div", { id: "label-panel" });
  const status = h("p", { role: "status", id: "label-status", class: "hint" });
  const problem = h("p", { role: "alert", id: "label-error", class: "error", hidden: true });
  let current = doc;

  const fail = (error) => {
    problem.textContent = error.detail || String(error);
    problem.hidden = false;
  };
  const say = (text) => {
    problem.hidden = true;
    status.textContent = text;
    announce(text);
  };
  const act = async (call, message) => {
    try {
      const done = await call();
      say(message(done));
      await draw();
      return true;
    } catch (error) {
      fail(error);
      return false;
    }
  };
  const path = `/api/images/${encodeURIComponent(doc.id)}`;
  const correct = (label, action) => api(`${path}/tags`, { method: "POST", json: { label, action } });

  const remove = async (label) => {
    if (!window.confirm(`Remove ${label} from this image for good? Reprocessing will not bring it back.`)) return;
    await act(() => correct(label, "remove"), () => `${label} removed; it will not come back on this image.`);
  };

  let fresh = true; // the page's document is current until something changes
  async function draw() {
    let tags = { labels: [], removed: [] };
    let taught = { labels: [], collecting: [] };
    try {
      [current, tags] = await Promise.all([fresh ? current : api(path), api(`${path}/tags`)]);
      fresh = false;
      if (editable) taught = await api("/api/custom");
    } catch (error) {
      fail(error); // the labels of the document still show, without their sources
    }
    const sources = new Map((tags.labels || []).map((t) => [t.label.toLowerCase(), t.source]));
    append(clear(root), [
      labelRows(current, sources, editable ? remove : null),
      tags.removed?.length ? h("p", { class: "hint", id: "removed-labels" }, `Removed by a person: ${tags.removed.join(", ")}`) : null,
      editable ? [
        oneFieldForm("add-label", "Add a label", "Add", "It is shown as added by a person, and kept through reprocessing.",
          (label) => act(() => correct(label, "add"), (done) => `${done.label} added by a person.`)),
        oneFieldForm("teach-label", "Teach a label from this image", "Teach",
          "This image becomes an example of a label of your own; a new label is applied to the collection once it has 3 examples.",
          (label) => act(() => api(`${path}/teach`, { method: "POST", json: { label } }), teachMessage),
          [...(taught.labels || []), ...(taught.collecting || [])].map((t) => t.name)),
      ] : null,
      status, problem]);
  }

  root.append(labelRows(doc, new Map(), null));
  draw();
  return root;
}
