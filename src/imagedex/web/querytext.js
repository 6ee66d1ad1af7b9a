// The search box's syntax, read on the client only to keep the controls in step with the box;
// the server parses the text itself (imagedex/index/query_syntax.py) and is the authority on errors.
//   dog label:cat label:"golden retriever" confidence>=90 after:2026-01-01 before:2026-02-01 unsafe

const TOKEN = /[^\s"]*"[^"]*"?|\S+/g;
const LABEL = /^label:(.+)$/i;
const CONFIDENCE = /^(?:confidence|conf)(>=|>|:|=)(\d+(?:\.\d+)?)$/i;
const DATE = /^(after|before):(\S+)$/i;
const MODERATION = /^(?:moderation:)?(safe|unsafe)$/i;

const unquote = (text) => text.replace(/^"(.*)"?$/, "$1").replace(/"$/, "");

function kindOf(token) {
  if (LABEL.test(token)) return "label";
  if (CONFIDENCE.test(token)) return "confidence";
  const date = DATE.exec(token);
  if (date) return date[1].toLowerCase();
  if (MODERATION.test(token)) return "moderation";
  return "text";
}

export function tokens(text) {
  return (text || "").match(TOKEN) || [];
}

/** What the box says: labels, confidence, after, before, moderation and the free words. */
export function readQuery(text) {
  const state = { labels: [], confidence: 0, after: "", before: "", moderation: "", words: [] };
  for (const token of tokens(text)) {
    const kind = kindOf(token);
    if (kind === "label") state.labels.push(unquote(LABEL.exec(token)[1]));
    else if (kind === "confidence") state.confidence = Number(CONFIDENCE.exec(token)[2]);
    else if (kind === "after" || kind === "before") state[kind] = DATE.exec(token)[2];
    else if (kind === "moderation") state.moderation = MODERATION.exec(token)[1].toLowerCase();
    else state.words.push(token);
  }
  return state;
}

export function labelToken(label) {
  return /[\s"]/.test(label) ? `label:"${label.replace(/"/g, "")}"` : `label:${label}`;
}

/** The box's text with every token of `kind` replaced by `token` (or removed when empty). */
export function replaceKind(text, kind, token) {
  const kept = tokens(text).filter((t) => kindOf(t) !== kind);
  if (token) kept.push(token);
  return kept.join(" ");
}

export function withConfidence(text, value) {
  return replaceKind(text, "confidence", value > 0 ? `confidence>=${value}` : "");
}

export function withDate(text, which, value) {
  return replaceKind(text, which, value ? `${which}:${value}` : "");
}

export function withModeration(text, value) {
  return replaceKind(text, "moderation", value || "");
}

/** Add the label filter, or take it out when the box already has it. */
export function toggleLabel(text, label) {
  const all = tokens(text);
  const wanted = label.toLowerCase();
  const kept = all.filter((t) => !(kindOf(t) === "label" && unquote(LABEL.exec(t)[1]).toLowerCase() === wanted));
  if (kept.length === all.length) kept.push(labelToken(label));
  return kept.join(" ");
}
