"""Accounts fixtures: a small two-market content folder (so cross-market writes can be
tried), a real server over it, and helpers that create users and tokens in its database
(support/stall_fixtures.py, shared with tests/studio)."""

from support.accounts import PASSWORD, Accounts, csrf_from  # noqa: F401 (tests import them from here)
from support.stall_fixtures import accounts, make_server, server  # noqa: F401 (fixtures)
