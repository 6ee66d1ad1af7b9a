"""Routes: the delivery history (mails, Slack, webhooks, folders) with status and errors."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from imagedex.api.deps import AdminDep, ServicesDep

router = APIRouter()


@router.get("/api/deliveries", tags=["deliveries"])
def list_deliveries(
    services: ServicesDep,
    who: AdminDep,
    source: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Newest first; targets are shown without their secret parts."""
    from imagedex.notify import Outbox

    outbox = Outbox.open(services.settings)
    try:
        return {
            "counts": outbox.counts(),
            "deliveries": [d.to_dict() for d in outbox.history(source, limit)],
        }
    finally:
        outbox.close()
