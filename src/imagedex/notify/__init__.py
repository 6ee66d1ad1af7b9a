"""Notifications: what to say (Message), where (Target), and a persistent outbox that sends."""

from imagedex.notify.message import Attachment, Message
from imagedex.notify.outbox import Delivery, DeliveryError, Outbox
from imagedex.notify.targets import TARGET_KINDS, Target, check_allowed, parse_target

__all__ = [
    "TARGET_KINDS",
    "Attachment",
    "Delivery",
    "DeliveryError",
    "Message",
    "Outbox",
    "Target",
    "check_allowed",
    "parse_target",
]
