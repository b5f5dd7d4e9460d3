"""Printable markers: the PDF from the API and the PNG sheets from the CLI carry one card
per display whose QR code decodes to that display's page, plus the entrance poster."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader
from typer.testing import CliRunner

from holobazaar.cli import app
from holobazaar.content import load_content
from holobazaar.markers import service
from holobazaar.markers.layout import A4_PX

from support.content import REPO
from support.live import LiveServer, start_server
from support.markets import DISPLAYS, MARKET, MARKET_NAME, rendered_title, write_small_market

BASE = "https://market.example"
ARTIFACTS = REPO / "test-artifacts"


def decode(image: Image.Image) -> list[str]:
    return sorted(result.text for result in zxingcpp.read_barcodes(image))


def expected_display_urls(base: str) -> list[str]:
    return sorted(f"{base}/d/{MARKET}/{display_id}" for display_id, _ in DISPLAYS)


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("markers")
    live = start_server(tmp, content_dir=write_small_market(tmp / "content"))
    yield live
    live.stop()


def pdf_pages(data: bytes) -> list[list[str]]:
    """The QR codes found on each page, read back from the images embedded in the PDF."""
    reader = PdfReader(io.BytesIO(data))
    pages = []
    for page in reader.pages:
        # A4 in points (1/72 in), within rounding.
        assert abs(float(page.mediabox.width) - 595.3) < 1.5
        assert abs(float(page.mediabox.height) - 841.9) < 1.5
        pages.append([url for img in page.images for url in decode(img.image)])
    return pages


def test_pdf_has_poster_and_one_card_per_display(server: LiveServer) -> None:
    with server.client() as client:
        response = client.get(f"/api/v1/markets/{MARKET}/markers.pdf", params={"base_url": BASE},
                              headers=server.write_headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert f'filename="markers-{MARKET}.pdf"' in response.headers["content-disposition"]
    pages = pdf_pages(response.content)
    assert len(pages) == 1 + 2  # poster + 9 cards on sheets of 8
    assert pages[0] == [f"{BASE}/m/{MARKET}"]
    assert len(pages[1]) == 8 and len(pages[2]) == 1
    assert sorted(pages[1] + pages[2]) == expected_display_urls(BASE)


def test_pdf_defaults_to_the_servers_address(server: LiveServer) -> None:
    with server.client() as client:
        response = client.get(f"/api/v1/markets/{MARKET}/markers.pdf",
                              headers=server.write_headers)
    assert response.status_code == 200
    own = f"http://localhost:{server.settings.port}"
    assert pdf_pages(response.content)[0] == [f"{own}/m/{MARKET}"]


@pytest.mark.parametrize("base_url", ["market.example", "ftp://market.example",
                                      "https://market.example/?token=abc", "https://"])
def test_pdf_refuses_a_base_url_that_is_not_absolute_http(server: LiveServer,
                                                          base_url: str) -> None:
    with server.client() as client:
        response = client.get(f"/api/v1/markets/{MARKET}/markers.pdf",
                              params={"base_url": base_url}, headers=server.write_headers)
    assert response.status_code == 422
    assert "base_url" in response.json()["detail"]


def test_pdf_of_an_unknown_market_is_404(server: LiveServer) -> None:
    with server.client() as client:
        response = client.get("/api/v1/markets/atlantis/markers.pdf",
                              headers=server.write_headers)
    assert response.status_code == 404
    assert "atlantis" in response.json()["detail"]


def test_pdf_needs_a_curator_of_the_market(server: LiveServer) -> None:
    from holobazaar.accounts import service as accounts

    engine = server.app.state.services.engine
    other, _ = accounts.create_token(engine, name="other market", roles=["curator"],
                                     markets=["elsewhere"], expires=None)
    performer, _ = accounts.create_token(engine, name="booth", roles=["performer"],
                                         markets=[MARKET], expires=None)
    with server.client() as client:
        url = f"/api/v1/markets/{MARKET}/markers.pdf"
        assert client.get(url).status_code == 401
        for token in (other, performer):
            response = client.get(url, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 403


def test_cards_carry_rendered_titles_and_bare_urls(tmp_path: Path) -> None:
    market = load_content(write_small_market(tmp_path)).markets[MARKET]
    markers = service.marker_set(market, BASE + "/", service.content_titles(market))
    assert sorted(c.title for c in markers.cards) == sorted(
        rendered_title(t) for _, t in DISPLAYS)
    assert "Bees & Honey of Riverside Test Market" in [c.title for c in markers.cards]
    for card in markers.cards:
        assert card.market_name == MARKET_NAME
        # Printed for months: identifiers only, no token, query or fragment.
        assert card.url.startswith(f"{BASE}/d/{MARKET}/")
        assert "?" not in card.url and "#" not in card.url


def test_cli_writes_png_sheets_whose_codes_decode(tmp_path: Path) -> None:
    content = write_small_market(tmp_path / "content")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["markers", "--market", MARKET, "--format", "png",
                                      "--out", str(out), "--content", str(content),
                                      "--data-dir", str(tmp_path / "var"),
                                      "--base-url", BASE])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == [f"markers-{MARKET}-poster.png", f"markers-{MARKET}-sheet-1.png",
                     f"markers-{MARKET}-sheet-2.png"]
    found = []
    for name in names[1:]:
        with Image.open(out / name) as sheet:
            assert sheet.size == A4_PX
            assert round(sheet.info["dpi"][0]) == 300
            found += decode(sheet)
    assert sorted(found) == expected_display_urls(BASE)
    with Image.open(out / names[0]) as poster:
        assert decode(poster) == [f"{BASE}/m/{MARKET}"]
    # Kept for a person to look at (test-artifacts/ is git-ignored).
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(out / names[1], ARTIFACTS / "markers-sheet.png")
    shutil.copy(out / names[0], ARTIFACTS / "markers-poster.png")


@pytest.mark.parametrize("args, message", [
    (["--market", "atlantis"], "no market 'atlantis'"),
    (["--market", MARKET, "--format", "svg"], "'svg' is not pdf or png"),
    (["--market", MARKET, "--base-url", "/relative"], "absolute http"),
])
def test_cli_refuses_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    content = write_small_market(tmp_path / "content", displays=1)
    result = CliRunner().invoke(app, ["markers", *args, "--content", str(content),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "out").exists()
