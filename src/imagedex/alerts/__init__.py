"""Alerts: rules evaluated as images are indexed (label, moderation, text) or on a schedule
(count of matching images in a window, silence), delivered through the notification outbox."""

from imagedex.alerts.model import AlertRecord, Rule, parse_duration

__all__ = ["AlertRecord", "Rule", "parse_duration"]
