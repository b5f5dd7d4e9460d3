"""Accounts and the audit chain on PostgreSQL (a throwaway database per run): the
migration applies, and concurrent appends from several threads keep one linear chain."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from audit.test_chain import append_concurrently
from holobazaar.accounts import service
from holobazaar.audit import service as audit

pytestmark = pytest.mark.postgres



def test_accounts_and_concurrent_audit_appends(pg_engine):
    service.create_user(pg_engine, "carol", "a long enough password", ["curator"], ["alpha"])
    cookie, _ = service.login(pg_engine, "carol", "a long enough password", "127.0.0.1",
                              service.ThrottlePolicy(), 60)
    principal = service.principal_for_session(pg_engine, cookie)
    assert principal is not None and principal.allows("curator", "alpha")
    token, _ = service.create_token(pg_engine, "booth", ["performer"], ["alpha"], None)
    booth = service.principal_for_token(pg_engine, token)
    assert booth is not None
    service.record_write(pg_engine, booth, "POST /x", "alpha", True)

    assert append_concurrently(pg_engine, threads=4, per_thread=10) == []
    with Session(pg_engine) as s:
        assert len(audit.recent(s, limit=1000, action="test.concurrent")) == 40
        assert audit.verify(s) == []
