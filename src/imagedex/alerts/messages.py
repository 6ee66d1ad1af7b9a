"""The notification an alert sends: subject, text, HTML, thumbnail, link and JSON payload."""

from __future__ import annotations

import html
from typing import Any

from imagedex.alerts.matching import Match
from imagedex.alerts.model import Rule, format_duration
from imagedex.config import Settings
from imagedex.documents import ImageDocument

SUBJECT_PREFIX = "imagedex alert: "
THUMBNAIL_LINK_TTL = 7 * 86400.0


def base_url(settings: Settings) -> str:
    """How people reach this imagedex (links in mails and Slack)."""
    from imagedex.access.signing import base_url as app_url

    return app_url(settings)


def thumbnail_url(settings: Settings, doc_id: str) -> str:
    """A signed thumbnail link: mail clients and Slack load it without logging in. It lives
    longer than ordinary links because people read alerts hours later."""
    from imagedex.access.signing import signed_image_url

    ttl = max(settings.link_ttl, THUMBNAIL_LINK_TTL)
    return signed_image_url(settings, doc_id, "thumbnail", ttl)


def image_link(settings: Settings, doc_id: str) -> str:
    return f"{base_url(settings)}/images/{doc_id}"


def _suppressed_line(rule: Rule, suppressed: int) -> str:
    if not suppressed:
        return ""
    period = format_duration(rule.throttle)
    noun = "match was" if suppressed == 1 else "matches were"
    return (
        f"{suppressed} further {noun} suppressed since the last notification "
        f"(at most one per {period})."
    )


def image_alert(
    settings: Settings, rule: Rule, doc: ImageDocument, match: Match, suppressed: int
) -> dict[str, Any]:
    """The fields of a notification about one image (keyword arguments for notify.Message)."""
    confidence = f" ({match.confidence:.0f}%)" if match.confidence is not None else ""
    subject = f"{SUBJECT_PREFIX}{match.headline()} in {doc.title}{confidence}"
    link = image_link(settings, doc.id)
    labels = ", ".join(f"{lb.label} {lb.confidence:.0f}%" for lb in doc.labels[:5]) or "none"
    lines = [
        f"Rule {rule.name} ({rule.summary()}) matched {doc.title}.",
        f"Labels: {labels}",
        f"Object: {doc.s3_location}",
        f"Open: {link}",
    ]
    extra = _suppressed_line(rule, suppressed)
    if extra:
        lines.append(extra)
    thumb = thumbnail_url(settings, doc.id)
    body = "".join(f"<p>{html.escape(line)}</p>" for line in lines[:-1] if line)
    markup = (
        f'<p><a href="{html.escape(link)}"><img src="{html.escape(thumb)}" '
        f'alt="{html.escape(doc.title)}" width="{settings.thumbnail_size}"></a></p>{body}'
        + (f"<p>{html.escape(extra)}</p>" if extra else "")
        + f'<p><a href="{html.escape(link)}">Open in imagedex</a></p>'
    )
    return {
        "subject": subject,
        "text": "\n".join(lines) + "\n",
        "html": markup,
        "image_url": thumb,
        "link": link,
        "payload": {
            "rule": rule.name,
            "kind": rule.kind,
            "document": {
                "id": doc.id,
                "title": doc.title,
                "key": doc.key,
                "bucket": doc.bucket,
                "s3_location": doc.s3_location,
                "ingested_at": doc.ingested_at,
                "labels": [
                    {"label": lb.label, "confidence": round(lb.confidence, 2)} for lb in doc.labels
                ],
                "moderation": list(doc.moderation),
            },
            "matched": match.to_dict(),
            "suppressed": suppressed,
        },
    }


def aggregate_alert(
    settings: Settings, rule: Rule, value: float, window_start: str, suppressed: int
) -> dict[str, Any]:
    """The fields of a notification about a count or silence rule."""
    if rule.kind == "silence":
        headline = f"no new images for {format_duration(rule.window)}"
    else:
        headline = (
            f"{value:g} images matching [{rule.query or 'all'}] in the last "
            f"{format_duration(rule.window)} ({rule.comparison} {rule.threshold:g})"
        )
    link = base_url(settings) + "/"
    lines = [f"Rule {rule.name}: {headline}.", f"Since {window_start}.", f"Open: {link}"]
    extra = _suppressed_line(rule, suppressed)
    if extra:
        lines.append(extra)
    return {
        "subject": f"{SUBJECT_PREFIX}{rule.name}: {headline}",
        "text": "\n".join(lines) + "\n",
        "html": "".join(f"<p>{html.escape(line)}</p>" for line in lines),
        "link": link,
        "payload": {
            "rule": rule.name,
            "kind": rule.kind,
            "query": rule.query,
            "value": value,
            "comparison": rule.comparison if rule.kind == "count" else "==",
            "threshold": rule.threshold if rule.kind == "count" else 0,
            "window_seconds": rule.window,
            "window_start": window_start,
            "suppressed": suppressed,
        },
    }
