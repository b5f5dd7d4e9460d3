"""HSTS behind a TLS-terminating proxy: configurable (HOLOBAZAAR_HSTS), sent only when a
trusted proxy says the client used HTTPS; none by default without TLS. (`serve --tls`
itself: tests/tls/test_serve_tls.py.)"""

from __future__ import annotations


def test_hsts_only_for_https_through_a_trusted_proxy(make_server):
    live = make_server(hsts=600, trusted_proxies="127.0.0.1,::1")
    with live.client() as c:
        assert c.get("/healthz", headers={"X-Forwarded-Proto": "https"}
                     ).headers["strict-transport-security"] == "max-age=600"
        assert "strict-transport-security" not in c.get("/healthz").headers


def test_untrusted_forwarded_proto_and_defaults_send_no_hsts(make_server):
    untrusted = make_server(hsts=600)
    default = make_server()
    for live in (untrusted, default):
        with live.client() as c:
            r = c.get("/healthz", headers={"X-Forwarded-Proto": "https"})
            assert "strict-transport-security" not in r.headers
