"""A one-line, human-readable description of what an image shows (alt text, `imagedex show`)."""

from __future__ import annotations

from imagedex.documents import ImageDocument, leaf_label_names
from imagedex.recognition.vocabulary import load_vocabulary

MIN_LABEL_CONFIDENCE = 20.0  # below this a label is a guess, not something to tell a person
MAX_TEXT_CHARS = 80


def _with_article(name: str) -> str:
    """ "a dog", "an apple", "clothing" (no article for what cannot be counted)."""
    if name.lower() in load_vocabulary().uncountable:
        return name
    return f"{'an' if name[:1].lower() in 'aeiou' else 'a'} {name}"


def _sentence_start(phrase: str) -> str:
    return phrase[:1].upper() + phrase[1:]


def describe(doc: ImageDocument) -> str:
    """E.g. "A golden retriever (dog), maybe a tennis ball; 1 face; text: OPEN 24 HOURS"."""
    parts: list[str] = []
    confident = [lb for lb in doc.labels if lb.confidence >= MIN_LABEL_CONFIDENCE]
    # parents are labels of their own (Rekognition's, ImageNet subtree mass): name the most
    # specific ones, not "an animal"
    leaves = leaf_label_names(confident)
    confident = [lb for lb in confident if lb.label.lower() in leaves] or confident
    # objects located in the picture first: the detector's "Person" says more than the
    # classifier's "Clothing"
    confident.sort(key=lambda lb: (not lb.instances, -lb.confidence))
    if confident:
        first = confident[0]
        name = first.label  # ImageNet/Rekognition names are already human-friendly
        kind = next((p for p in first.parents if p.lower() not in name.lower()), None)
        phrase = _sentence_start(_with_article(name)) + (f" ({kind})" if kind else "")
        others = [lb.label for lb in confident[1:3] if lb.label.lower() != name.lower()]
        if others:
            phrase += ", maybe " + " or ".join(_with_article(o) for o in others)
        parts.append(phrase)
    elif doc.labels:
        best = max(doc.labels, key=lambda lb: lb.confidence)
        parts.append(f"Possibly {_with_article(best.label)}")
    else:
        parts.append("An image")
    people = [lb for lb in doc.labels if lb.label == "Person" and lb.instances]
    if doc.faces:
        parts.append(f"{len(doc.faces)} face{'s' if len(doc.faces) != 1 else ''}")
    elif people:
        count = len(people[0].instances)
        parts.append(f"{count} person" if count == 1 else f"{count} people")
    if doc.text:
        text = " / ".join(line.strip() for line in doc.text if line.strip())
        if len(text) > MAX_TEXT_CHARS:
            text = text[: MAX_TEXT_CHARS - 1].rstrip() + "…"
        parts.append(f"text: {text}")
    if doc.unsafe_confidence >= 50:
        parts.append("flagged as possibly unsafe")
    return "; ".join(parts)
