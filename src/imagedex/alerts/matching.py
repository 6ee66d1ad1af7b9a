"""Does one indexed image match one per-image rule? Pure functions, no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from imagedex.alerts.model import Rule
from imagedex.alerts.patterns import bounded_lines, compile_pattern
from imagedex.documents import ImageDocument


@dataclass(frozen=True)
class Match:
    """Why a rule fired on a document: what matched, at which confidence."""

    rule: str
    kind: str
    what: str  # the label, moderation label or text that matched
    confidence: float | None = None  # label and moderation kinds

    def headline(self) -> str:
        """`dog detected`, `unsafe content (Explicit Nudity) detected`, `text "x" found`."""
        if self.kind == "label":
            return f"{self.what} detected"
        if self.kind == "moderation":
            return f"unsafe content ({self.what}) detected"
        return f'text "{self.what}" found'

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "what": self.what, "confidence": self.confidence}


def match_image(rule: Rule, doc: ImageDocument) -> Match | None:
    """The match of a per-image rule on `doc`, or None (aggregate kinds never match here)."""
    if rule.kind == "label":
        return _match_label(rule, doc)
    if rule.kind == "moderation":
        return _match_moderation(rule, doc)
    if rule.kind == "text":
        return _match_text(rule, doc)
    return None


def _match_label(rule: Rule, doc: ImageDocument) -> Match | None:
    wanted = rule.label.lower()
    best = max(
        (lb for lb in doc.labels if lb.confidence >= rule.min_confidence and wanted in lb.terms()),
        key=lambda lb: lb.confidence,
        default=None,
    )
    if best is None:
        return None
    # name the rule's label ("dog") and keep the specific one ("golden retriever") in `what`
    what = rule.label if best.label.lower() == wanted else f"{rule.label} ({best.label})"
    return Match(rule.name, "label", what, best.confidence)


def _match_moderation(rule: Rule, doc: ImageDocument) -> Match | None:
    wanted = rule.moderation_label.lower()
    found = [
        m
        for m in doc.moderation
        if float(m.get("confidence", 0.0)) >= rule.min_confidence
        and (
            not wanted
            or wanted in (str(m.get("label", "")).lower(), str(m.get("parent") or "").lower())
        )
    ]
    if not found:
        return None
    best = max(found, key=lambda m: float(m.get("confidence", 0.0)))
    return Match(rule.name, "moderation", str(best.get("label", "")), float(best["confidence"]))


def _match_text(rule: Rule, doc: ImageDocument) -> Match | None:
    matcher = compile_pattern(rule.pattern, rule.regex)
    for line in bounded_lines([*doc.text, doc.title]):
        found = matcher(line)
        if found is not None:
            return Match(rule.name, "text", found)
    return None
