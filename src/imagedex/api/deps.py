"""What every route depends on: the deployment's services and who is calling with which role."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from imagedex.services import Services

ROLES = ("viewer", "editor", "admin")  # each role may do what the ones before it may


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    via: str  # "key" (API key), "session" (browser login) or "local" (auth off)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def require_role(role: str) -> Callable[[Request], Principal]:
    """A dependency that lets the request through only for `role` or better."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def dependency(request: Request) -> Principal:
        # placeholder until access control lands: everyone is a local admin
        return Principal(name="local", role="admin", via="local")

    return dependency


ServicesDep = Annotated[Services, Depends(get_services)]
ViewerDep = Annotated[Principal, Depends(require_role("viewer"))]
EditorDep = Annotated[Principal, Depends(require_role("editor"))]
AdminDep = Annotated[Principal, Depends(require_role("admin"))]
