"""The three roles, each allowed what the ones before it are allowed."""

from __future__ import annotations

from imagedex.errors import ImagedexError

ROLES = ("viewer", "editor", "admin")


class AccessError(ImagedexError):
    """A user, key or password request that cannot be honoured (the message says why)."""


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccessError(f"unknown role {role!r}: choose one of {', '.join(ROLES)}")
    return role


def role_allows(have: str, need: str) -> bool:
    """Whether a principal with role `have` may do what needs role `need`."""
    return have in ROLES and ROLES.index(have) >= ROLES.index(check_role(need))
