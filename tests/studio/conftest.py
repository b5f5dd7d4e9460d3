"""Studio fixtures: a real server over the two-market content (alpha, beta) and staff
accounts in its database (support/stall_fixtures.py, shared with tests/accounts)."""

from support.stall_fixtures import accounts, make_server, server  # noqa: F401 (fixtures)
