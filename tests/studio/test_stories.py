"""Stories and recipes in the studio (#21): create, edit with the visitor renderer's
preview, a stale save is a conflict, HTML is shown as text, the workflow with four-eyes
(another curator publishes), revisions with a diff and restore, 403 for another market."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.accounts import Accounts, csrf_from
from support.live import LiveServer, start_server
from support.markets import write_stall_markets


def start_four_eyes(root: Path) -> LiveServer:
    content = write_stall_markets(root / "content")
    market = content / "scenes" / "alpha" / "market.yaml"
    text = market.read_text().replace("currency: EUR}", "currency: EUR, "
                                      "timezone: Europe/Amsterdam}", 1)
    market.write_text(text + "stories_four_eyes: true\n")  # Amsterdam: the schedule's times
    return start_server(root, content_dir=content, watch=False)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_four_eyes(tmp_path_factory.mktemp("stories"))
    accounts = Accounts(server)
    accounts.user("carol", ["curator"], ["alpha"])
    accounts.user("dave", ["curator"], ["alpha"])
    accounts.user("bea", ["curator"], ["beta"])
    yield server
    server.stop()


def signed_in(live: LiveServer, name: str) -> tuple[httpx.Client, str]:
    client = live.client()
    Accounts(live).login(client, name)
    page = client.get("/studio/alpha/stories") if name != "bea" else client.get(
        "/studio/beta/stories")
    assert page.status_code == 200, page.text
    return client, csrf_from(page.text)


def create(client: httpx.Client, csrf: str, kind: str, title: str) -> str:
    made = client.post("/studio/alpha/stories", data={"csrf": csrf, "kind": kind,
                                                       "title": title})
    assert made.status_code == 303, made.text
    return made.headers["location"]


def revision(html: str) -> str:
    return re.search(r'name="revision" value="(\d+)"', html).group(1)


def test_write_preview_review_publish_restore(live: LiveServer) -> None:
    carol, csrf = signed_in(live, "carol")
    dave, dcsrf = signed_in(live, "dave")
    where = create(carol, csrf, "story", "Orchard <b>morning</b>")
    slug = where.rsplit("/", 1)[1]
    page = carol.get(where)
    # Markup in a title never reaches the page as markup (stored as text or escaped).
    assert "<b>morning" not in page.text and "Orchard" in page.text
    first_rev = revision(page.text)
    saved = carol.post(where, data={"csrf": csrf, "revision": first_rev,
                                    "title": "Orchard morning", "author": "Carol",
                                    "body": "First **pick** of the year."})
    assert saved.status_code == 303, saved.text
    # The preview is the visitor pages' renderer: Markdown in, sanitized HTML out.
    preview = carol.post("/studio/alpha/stories-preview",
                         data={"csrf": csrf, "body": "Hi **there** <script>x()</script>"})
    assert "<strong>there</strong>" in preview.text and "<script" not in preview.text
    # A stale page saves over a newer revision: conflict, nothing written.
    stale = carol.post(where, data={"csrf": csrf, "revision": first_rev,
                                    "title": "Stale", "body": "old"})
    assert stale.status_code == 409 and "was not saved" in stale.text
    page = carol.get(where)
    assert "Orchard morning" in page.text and "Stale" not in page.text
    second = revision(page.text)
    carol.post(where, data={"csrf": csrf, "revision": second, "title": "Orchard morning",
                            "body": "Second text."})
    # Carol sends it for review; four-eyes: she cannot publish it, Dave can.
    assert carol.post(where + "/status", data={"csrf": csrf, "to": "review"}
                      ).status_code == 303
    refused = carol.post(where + "/status", data={"csrf": csrf, "to": "published"})
    assert refused.status_code == 409 and "another curator" in refused.text
    assert dave.post(where + "/status", data={"csrf": dcsrf, "to": "published"}
                     ).status_code == 303
    assert "Second text." in live.client().get(f"/s/{slug}").text
    # The diff shows what changed; restoring revision 2 brings its text back, published.
    diff = carol.get(where + "?diff=2")
    assert 'class="del"' in diff.text and 'class="add"' in diff.text
    assert carol.post(where + "/restore", data={"csrf": csrf, "number": "2"}
                      ).status_code == 303
    assert "First <strong>pick</strong>" in live.client().get(f"/s/{slug}").text
    bad = carol.post(where + "/restore", data={"csrf": csrf, "number": "99"})
    assert bad.status_code == 422 and "no revision 99" in bad.text


def test_recipe_fields_and_bad_input(live: LiveServer) -> None:
    carol, csrf = signed_in(live, "carol")
    where = create(carol, csrf, "recipe", "Apple cake")
    page = carol.get(where)
    assert 'value="APL-1"' in page.text  # the inventory picker
    ok = carol.post(where, data={"csrf": csrf, "revision": revision(page.text),
                                 "title": "Apple cake", "body": "<img src=x onerror=alert(1)>",
                                 "ingredients": "3 apples | APL-1\nflour",
                                 "instructions": "Bake.", "prep_time": "PT15M"})
    assert ok.status_code == 303, ok.text
    page = carol.get(where)
    assert "3 apples | APL-1" in page.text and "onerror" not in page.text.split(
        'id="preview"')[1].split("</div>")[0]
    bad = carol.post(where, data={"csrf": csrf, "revision": revision(page.text),
                                  "title": "", "ingredients": "", "instructions": "x",
                                  "prep_time": "soon"})
    assert bad.status_code == 422
    assert 'id="e-title"' in bad.text and 'id="e-ingredients"' in bad.text
    # The revision diff covers the recipe's fields, not only its text.
    page = carol.get(where)
    carol.post(where, data={"csrf": csrf, "revision": revision(page.text),
                            "title": "Apple cake", "body": "<img src=x onerror=alert(1)>",
                            "ingredients": "4 apples | APL-1\nflour\nsugar",
                            "instructions": "Bake.", "prep_time": "PT20M"})
    diff = carol.get(where + "?diff=2").text.split('id="diff"')[1]
    removed, added = '<span class="del">\u2212 ', '<span class="add">+ '
    for line in (removed + "  - 3 apples | APL-1", added + "  - 4 apples | APL-1",
                 added + "  - sugar", removed + "Preparation time: PT15M",
                 added + "Preparation time: PT20M", '<span class="same">  Title: Apple cake'):
        assert line in diff, line
    missing = carol.post("/studio/alpha/stories", data={"csrf": csrf, "kind": "poem",
                                                        "title": "x"})
    assert missing.status_code == 422 and "Choose story or recipe" in missing.text
    expired = carol.post(where, data={"csrf": "nope", "revision": "1", "title": "x"})
    assert expired.status_code == 403


def test_another_market_is_403(live: LiveServer) -> None:
    carol, csrf = signed_in(live, "carol")
    where = create(carol, csrf, "story", "Alpha only")
    bea, bcsrf = signed_in(live, "bea")
    assert bea.get(where).status_code == 403
    assert bea.post(where + "/status", data={"csrf": bcsrf, "to": "review"}
                    ).status_code == 403
    assert bea.get("/studio/beta/stories/story/" + where.rsplit("/", 1)[1]
                   ).status_code == 404


def test_price_four_eyes_alone_lets_the_author_publish(tmp_path: Path) -> None:
    """`four_eyes` is about prices; stories have their own `stories_four_eyes`."""
    content = write_stall_markets(tmp_path / "content")
    market = content / "scenes" / "alpha" / "market.yaml"
    market.write_text(market.read_text() + "four_eyes: true\n")
    server = start_server(tmp_path, content_dir=content, watch=False)
    try:
        token = Accounts(server).token(["curator"], ["alpha"], name="solo")
        auth = {"Authorization": f"Bearer {token}"}
        with server.client() as api:
            made = api.post("/api/v1/markets/alpha/stories", headers=auth, json={
                "slug": "solo-story", "title": "Solo", "body": "x"})
            assert made.status_code in (200, 201), made.text
            base = "/api/v1/markets/alpha/stories/solo-story"
            assert api.post(base + "/status", json={"status": "review"}, headers=auth
                            ).status_code == 200
            assert api.post(base + "/publish", headers=auth).status_code == 200
    finally:
        server.stop()


def test_four_eyes_on_the_api(live: LiveServer) -> None:
    carol, csrf = signed_in(live, "carol")
    slug = create(carol, csrf, "story", "Api four eyes").rsplit("/", 1)[1]
    accounts = Accounts(live)
    first_token = accounts.token(["curator"], ["alpha"], name="bot-one")
    second_token = accounts.token(["curator"], ["alpha"], name="bot-two")
    base = f"/api/v1/markets/alpha/stories/{slug}"
    with live.client() as api:
        one = {"Authorization": f"Bearer {first_token}"}
        two = {"Authorization": f"Bearer {second_token}"}
        assert api.post(base + "/status", json={"status": "review"}, headers=one
                        ).status_code == 200
        refused = api.post(base + "/publish", headers=one)
        assert refused.status_code == 409 and "four-eyes" in refused.text
        assert api.post(base + "/publish", headers=two).status_code == 200
    # The visitor pages carry the form to send a story or recipe.
    assert 'action="/m/alpha/send"' in live.client().get(f"/s/{slug}").text


def test_schedule_publish_from_the_editor(live: LiveServer) -> None:
    """The editor's "Schedule publish" card (#24): the stories.scheduled service as the API
    uses it; errors next to the field; pending schedules with Cancel."""
    carol, csrf = signed_in(live, "carol")
    where = create(carol, csrf, "story", "Harvest starts")
    assert 'id="schedule"' not in carol.get(where).text  # a draft: nothing to schedule
    refused = carol.post(where + "/schedule", data={"csrf": csrf, "action": "publish",
                                                    "at": "2030-06-01T09:30"})
    assert refused.status_code == 422 and "only a document in review" in refused.text
    assert carol.post(where + "/status", data={"csrf": csrf, "to": "review"}
                      ).status_code == 303
    page = carol.get(where)
    assert 'id="schedule"' in page.text and 'type="datetime-local"' in page.text
    past = carol.post(where + "/schedule", data={"csrf": csrf, "action": "publish",
                                                 "at": "2020-01-01T10:00"})
    assert past.status_code == 422 and 'id="e-s-at"' in past.text
    assert "is in the past" in past.text and 'value="2020-01-01T10:00"' in past.text
    bad = carol.post(where + "/schedule", data={"csrf": csrf, "action": "publish",
                                                "at": "tomorrow"})
    assert bad.status_code == 422 and "Give a date and time" in bad.text
    done = carol.post(where + "/schedule", data={"csrf": csrf, "action": "publish",
                                                 "at": "2030-06-01T09:30"})
    assert done.status_code == 303, done.text
    page = carol.get(done.headers["location"])
    assert "Sat 01 Jun 2030 09:30" in page.text and "Scheduled." in page.text
    sid = re.search(r"/schedule/(\d+)/cancel", page.text).group(1)
    slug = where.rsplit("/", 1)[1]
    api = carol.get(f"/api/v1/markets/alpha/stories/{slug}/schedule").json()
    assert [(r["id"], r["state"], r["at"]) for r in api] == [
        (int(sid), "pending", "2030-06-01T07:30:00+00:00")]  # Europe/Amsterdam, summer
    assert 'id="older-schedule"' not in page.text
    # A later edit is told the reviewed revision, not the edit, will publish.
    reviewed = revision(page.text)
    edited = carol.post(where, data={"csrf": csrf, "revision": reviewed,
                                     "title": "Harvest starts today", "body": "New text."})
    assert edited.status_code == 303, edited.text
    warning = carol.get(edited.headers["location"]).text
    assert 'id="older-schedule"' in warning
    assert f"will publish revision {reviewed}, the one that was reviewed" in warning
    gone = carol.post(f"{where}/schedule/{sid}/cancel", data={"csrf": csrf})
    assert gone.status_code == 303
    page = carol.get(where)
    assert "/cancel" not in page.text and "Nothing scheduled" in page.text
    again = carol.post(f"{where}/schedule/{sid}/cancel", data={"csrf": csrf})
    assert again.status_code == 409 and "cancelled already" in again.text
    assert carol.post(where + "/schedule", data={"action": "publish", "at": "2030-06-01T09:30"}
                      ).status_code == 403  # no CSRF token
