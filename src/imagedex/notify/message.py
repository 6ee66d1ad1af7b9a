"""What a notification says, independent of how it travels (mail, Slack, webhook, folder)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # e.g. application/pdf, image/png
    data: bytes


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    html: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    image_url: str | None = None  # a thumbnail Slack shows beside the text
    link: str | None = None  # where "Open" leads (the image, the report, the search)
    payload: dict[str, Any] = field(default_factory=dict)  # machine-readable details for webhooks

    def to_json(self) -> dict[str, Any]:
        """Everything but the attachment bytes (the outbox keeps those as blobs)."""
        return {
            "subject": self.subject,
            "text": self.text,
            "html": self.html,
            "image_url": self.image_url,
            "link": self.link,
            "payload": self.payload,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], attachments: list[Attachment]) -> Message:
        return cls(
            subject=data["subject"],
            text=data["text"],
            html=data.get("html"),
            attachments=attachments,
            image_url=data.get("image_url"),
            link=data.get("link"),
            payload=data.get("payload") or {},
        )
