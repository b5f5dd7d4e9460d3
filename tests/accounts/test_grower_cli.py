"""`holobazaar user create NAME --role grower --market M --farm F` (#21): the farm is
required with the grower role, checked against the market's market.yaml when the content
folder has it, stored with the grant and shown by `user list`; grants move a grower to
another farm; tokens cannot be growers."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from holobazaar import db
from holobazaar.accounts import service
from holobazaar.cli import app

PASSWORD = "a long enough password"
MARKET = """\
format: 1
market: {id: alpha, name: Alpha, currency: EUR}
zones: [{id: hall, name: Hall}]
farms: [{id: hill-farm, name: Hill Farm}, {id: river-farm, name: River Farm}]
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    content = tmp_path / "content"
    (content / "scenes" / "alpha").mkdir(parents=True)
    (content / "scenes" / "alpha" / "market.yaml").write_text(MARKET)
    monkeypatch.setenv("HOLOBAZAAR_CONTENT_DIR", str(content))
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str, input: str | None = PASSWORD + "\n"):
        return runner.invoke(app, [*args, "--database-url", url], input=input)

    run.engine = lambda: db.make_engine(url)  # type: ignore[attr-defined]
    return run


def test_create_a_grower_with_a_farm(cli):
    r = cli("user", "create", "ana", "--role", "grower", "--market", "alpha",
            "--farm", "hill-farm", "--password-stdin")
    assert r.exit_code == 0, r.output
    assert "ana\tactive\tgrower@alpha/hill-farm" in cli("user", "list").output
    principal_farms = {(u.name, tuple(g)) for u, grants in
                       service.list_user_grants(cli.engine()) for g in grants}
    assert ("ana", ("grower", "alpha", "hill-farm")) in principal_farms
    r = cli("user", "grant", "ana", "--role", "grower", "--market", "alpha",
            "--farm", "river-farm")
    assert r.exit_code == 0, r.output
    assert "grower@alpha/river-farm" in cli("user", "list").output


@pytest.mark.parametrize(("args", "message"), [
    (["--role", "grower", "--market", "alpha"], "needs --farm"),
    (["--role", "grower", "--market", "alpha", "--farm", "nope"], "has no farm 'nope'"),
    (["--role", "grower", "--market", "*", "--farm", "hill-farm"], "exactly one --market"),
    (["--role", "grower", "--market", "alpha", "--market", "beta", "--farm", "hill-farm"],
     "exactly one --market"),
    (["--role", "curator", "--market", "alpha", "--farm", "hill-farm"], "grower role only"),
    (["--role", "grower", "--market", "alpha", "--farm", "Bad Farm"], "bad farm"),
])
def test_bad_grower_grants_are_refused_and_nothing_is_created(cli, args, message):
    r = cli("user", "create", "ana", *args, "--password-stdin")
    assert r.exit_code == 1
    assert message in r.output
    listing = cli("user", "list")
    assert listing.exit_code == 0 and "ana" not in listing.output


def test_tokens_cannot_be_growers(cli):
    r = cli("token", "create", "--role", "grower", "--market", "alpha", "--name", "x",
            input=None)
    assert r.exit_code == 1 and "cannot have the grower role" in r.output
