"""Authoring: the studio's write API over scene files (routes.py). The work itself is the
scenes domain's (scenes/authoring.py); this package adds who may do it (accounts), which
the scenes layer must not import."""
