"""`holobazaar user ...` and `holobazaar token ...` against a temporary SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from holobazaar import db
from holobazaar.accounts import service
from holobazaar.accounts.models import ApiToken, User
from holobazaar.audit import service as audit
from holobazaar.cli import app

PASSWORD = "a long enough password"


@pytest.fixture
def cli(tmp_path: Path):
    runner = CliRunner()
    url = f"sqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str, input: str | None = None):
        return runner.invoke(app, [*args, "--database-url", url], input=input)

    run.engine = lambda: db.make_engine(url)  # type: ignore[attr-defined]
    return run


def test_user_create_from_stdin_and_list(cli):
    r = cli("user", "create", "carol", "--role", "curator", "--market", "alpha",
            "--market", "beta", "--password-stdin", input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    r = cli("user", "create", "root", "--role", "admin", "--password-stdin",
            input=PASSWORD + "\n")
    assert r.exit_code == 0, r.output
    listing = cli("user", "list")
    assert listing.exit_code == 0
    assert "carol\tactive\tcurator@alpha, curator@beta" in listing.output
    assert "root\tactive\tadmin@*" in listing.output
    with Session(cli.engine()) as s:
        user = s.exec(select(User).where(User.name == "carol")).one()
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        assert service.verify_password(user.password_hash, PASSWORD)


def test_user_create_prompts_with_confirmation(cli):
    r = cli("user", "create", "pat", "--role", "performer", "--market", "alpha",
            input=f"{PASSWORD}\n{PASSWORD}\n")
    assert r.exit_code == 0, r.output
    r = cli("user", "create", "pam", "--role", "performer", "--market", "alpha",
            input=f"{PASSWORD}\nsomething else entirely\n{PASSWORD}\n{PASSWORD}\n")
    assert r.exit_code == 0 and "do not match" in r.output


@pytest.mark.parametrize(("args", "message"), [
    (["Bad Name", "--role", "curator", "--market", "alpha"], "user names are"),
    (["carol", "--role", "chef", "--market", "alpha"], "unknown role 'chef'"),
    (["carol", "--role", "curator"], "needs --market"),
    (["carol", "--role", "curator", "--market", "Alpha!"], "bad market"),
])
def test_user_create_rejects_bad_input(cli, args, message):
    r = cli("user", "create", *args, "--password-stdin", input=PASSWORD + "\n")
    assert r.exit_code == 1 and message in r.output


def test_user_create_rejects_short_password_and_duplicates(cli):
    r = cli("user", "create", "carol", "--role", "curator", "--market", "alpha",
            "--password-stdin", input="short\n")
    assert r.exit_code == 1 and "passwords are 10" in r.output
    args = ("user", "create", "carol", "--role", "curator", "--market", "alpha",
            "--password-stdin")
    assert cli(*args, input=PASSWORD + "\n").exit_code == 0
    r = cli(*args, input=PASSWORD + "\n")
    assert r.exit_code == 1 and "exists" in r.output


def test_disable_reset_grant_revoke(cli):
    cli("user", "create", "carol", "--role", "curator", "--market", "alpha",
        "--password-stdin", input=PASSWORD + "\n")
    assert cli("user", "disable", "carol").exit_code == 0
    assert "carol\tdisabled" in cli("user", "list").output
    assert cli("user", "enable", "carol").exit_code == 0
    new = "another long password"
    r = cli("user", "reset-password", "carol", "--password-stdin", input=new + "\n")
    assert r.exit_code == 0
    with Session(cli.engine()) as s:
        user = s.exec(select(User).where(User.name == "carol")).one()
        assert service.verify_password(user.password_hash, new)
        assert not service.verify_password(user.password_hash, PASSWORD)
    r = cli("user", "grant", "carol", "--role", "performer", "--market", "beta")
    assert r.exit_code == 0 and "performer@beta" in r.output
    r = cli("user", "revoke", "carol", "--role", "curator", "--market", "alpha")
    assert r.exit_code == 0 and r.output.strip() == "carol: performer@beta"
    assert cli("user", "disable", "nobody").exit_code == 1
    with Session(cli.engine()) as s:
        actions = [e.action for e in reversed(audit.recent(s))]
        assert audit.verify(s) == []
    assert actions == ["user.create", "user.disable", "user.enable", "user.reset_password",
                       "role.grant", "role.revoke"]


def test_token_create_list_revoke(cli):
    r = cli("token", "create", "--role", "performer", "--market", "alpha",
            "--name", "qlab booth", "--expires", "30d")
    assert r.exit_code == 0, r.output
    token = r.stdout.strip().splitlines()[-1]
    assert token.startswith("hbt_") and len(token) > 40
    listing = cli("token", "list")
    assert "qlab booth\tperformer\talpha" in listing.output and token not in listing.output
    with Session(cli.engine()) as s:
        row = s.exec(select(ApiToken)).one()
        assert row.token_hash == service.sha256_hex(token) and row.expires_at is not None
    engine = cli.engine()
    principal = service.principal_for_token(engine, token)
    assert principal is not None and principal.allows("performer", "alpha")
    assert not principal.allows("performer", "beta")
    r = cli("token", "revoke", "qlab booth")
    assert r.exit_code == 0 and "revoked token 1" in r.output
    assert service.principal_for_token(engine, token) is None
    assert cli("token", "revoke", "nope").exit_code == 1


@pytest.mark.parametrize(("args", "message"), [
    (["--role", "performer", "--market", "alpha", "--name", "x", "--expires", "soon"],
     "bad duration"),
    (["--role", "performer", "--market", "alpha", "--name", "x", "--expires", "0d"],
     "positive"),
    (["--role", "performer", "--name", "x"], "needs --market"),
    (["--role", "performer", "--market", "alpha", "--name", " "], "token names"),
])
def test_token_create_rejects_bad_input(cli, args, message):
    r = cli("token", "create", *args)
    assert r.exit_code == 1 and message in r.output


def test_token_names_are_unique(cli):
    args = ("token", "create", "--role", "curator", "--market", "alpha", "--name", "pos")
    assert cli(*args).exit_code == 0
    r = cli(*args)
    assert r.exit_code == 1 and "exists" in r.output
