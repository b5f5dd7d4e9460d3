"""Accounts API: who am I (for API clients and page scripts)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from holobazaar.accounts.dependencies import require_role
from holobazaar.accounts.models import Principal

router = APIRouter(prefix="/api/v1/auth", tags=["accounts"])


class Grant(BaseModel):
    role: str
    market: str


class Me(BaseModel):
    kind: str
    name: str
    grants: list[Grant]
    csrf_token: str | None = None


@router.get("/me", response_model=Me)
def me(principal: Principal = Depends(require_role())) -> Me:
    """The caller's identity and grants; for a cookie session also the CSRF token that
    unsafe API requests must echo in `X-CSRF-Token`."""
    return Me(kind=principal.kind, name=principal.name,
              grants=[Grant(role=r, market=m) for r, m in sorted(principal.grants)],
              csrf_token=principal.session_csrf)
