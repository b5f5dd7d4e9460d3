"""The commands: file import (bad rows by line), audit verify (and tamper detection),
audit export --since, simulate glitch against a running server."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text
from typer.testing import CliRunner

from holobazaar.accounts import service as accounts
from holobazaar.cli import app
from holobazaar.db import session_scope

from .conftest import MARKET, display_state, get
from support.waiting import wait_for

runner = CliRunner()


def _args(live) -> list[str]:
    return ["--data-dir", str(live.settings.data_dir)]


def test_import_csv_applies_good_rows_and_reports_bad_ones(inv, tmp_path: Path) -> None:
    live, _ = inv
    csv_file = tmp_path / "stock.csv"
    csv_file.write_text(
        "sku,price,stock,currency\n"
        "TOM-BRANDY,6.40,12,EUR\n"
        "CAR-NANTES,NaN,3,EUR\n"
        "KAL-NERO,-2,3,EUR\n"
        "LET-BUTTER,1.95,5,ZZZ\n"
        "PUM-POTIMARRON,4.20,999999999999,EUR\n"
        "BEE-CHIOGGIA,3.50,7,EUR\n")
    result = runner.invoke(app, ["inventory", "import", str(csv_file), "--market", MARKET,
                                 "--content", str(live.content_dir), *_args(live)])
    assert result.exit_code == 1, result.output
    for line in (3, 4, 5, 6):
        assert f"stock.csv:{line}:" in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["applied"] == 2 and summary["rejected"] == 4
    # The running server picks up the other process's change on its next sweep.
    wait_for(lambda: display_state(live, "zonneveld-greens")["items"]["TOM-BRANDY"]["price"]
             == "6.40")
    item = display_state(live, "zonneveld-greens")["items"]["BEE-CHIOGGIA"]
    assert (item["status"], item["stock"]) == ("in_stock", 7)


def test_import_json_snapshot_marks_missing_items_sold_out(inv, tmp_path: Path) -> None:
    live, _ = inv
    with live.client() as client:
        items = client.get(f"/api/v1/markets/{MARKET}/items").json()
    listed = [i for i in items if i["sku"] != "KAL-NERO"]
    doc = tmp_path / "snap.json"
    doc.write_text(json.dumps([{"sku": i["sku"], "price": i["price"]} for i in listed]))
    result = runner.invoke(app, ["inventory", "import", str(doc), "--market", MARKET,
                                 "--snapshot", "sold_out", "--content", str(live.content_dir),
                                 *_args(live)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["applied"] == 1
    wait_for(lambda: display_state(live, "zonneveld-greens")["items"]["KAL-NERO"]["status"]
             == "sold_out")


def test_audit_verify_and_tamper_detection(inv) -> None:
    live, feed = inv
    feed.push({"sku": "TOM-BRANDY", "price": "6.30"})
    feed.push({"sku": "TOM-BRANDY", "price": "6.20"})
    ok = runner.invoke(app, ["audit", "verify", *_args(live)])
    assert ok.exit_code == 0, ok.output
    assert "chain intact" in ok.stdout
    with session_scope(live.app.state.services.engine) as session:
        row = session.execute(text(
            "SELECT id FROM audit_log WHERE action = 'inventory.batch' ORDER BY id")).first()
        session.execute(text("UPDATE audit_log SET detail = replace(detail, '6.30', '1.00'),"
                             " actor = 'someone else' WHERE id = :id"), {"id": row[0]})
    broken = runner.invoke(app, ["audit", "verify", *_args(live)])
    assert broken.exit_code == 1
    assert f"broken: entry {row[0]}: hash does not match its content" in broken.stderr


def test_audit_export_since_writes_json_lines(inv, tmp_path: Path) -> None:
    live, feed = inv
    feed.push({"sku": "TOM-BRANDY", "price": "6.30"})
    out = tmp_path / "audit.jsonl"
    result = runner.invoke(app, ["audit", "export", "--since", "2000-01-01", "--out", str(out),
                                 *_args(live)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert any(e["action"] == "inventory.batch" for e in lines)
    assert all(lines[i]["prev_hash"] == lines[i - 1]["hash"] for i in range(1, len(lines)))
    future = runner.invoke(app, ["audit", "export", "--since", "2999-01-01", *_args(live)])
    assert future.exit_code == 0 and future.stdout == ""
    bad = runner.invoke(app, ["audit", "export", "--since", "last tuesday", *_args(live)])
    assert bad.exit_code == 2 and "ISO 8601" in bad.output


def test_simulate_glitch_against_a_running_server(inv) -> None:
    live, _ = inv
    token, _ = accounts.create_token(live.app.state.services.engine, "drill", ["admin"], [], None,
                                     actor="tests")
    result = runner.invoke(app, ["simulate", "glitch", "--market", MARKET, "--seed", "3",
                                 "--url", live.url, "--token", token])
    assert result.exit_code == 0, result.output
    scrambled = [line.split()[1] for line in result.stdout.splitlines()]
    assert scrambled
    assert all(line.endswith(": caught by the publish guard")
               for line in result.stdout.splitlines())

    def repaired() -> bool:
        found = get(live, f"/api/v1/reconcile/{MARKET}/mismatches").json()
        return set(scrambled) <= {m["display"] for m in found}

    wait_for(repaired)
    no_token = runner.invoke(app, ["simulate", "glitch", "--market", MARKET, "--url", live.url],
                             env={"HOLOBAZAAR_TOKEN": ""})
    assert no_token.exit_code == 2 and "--token" in no_token.output
    wrong = runner.invoke(app, ["simulate", "glitch", "--market", MARKET, "--url", live.url,
                                "--token", "hbt_nope"])
    assert wrong.exit_code == 1 and "401" in wrong.output


def test_import_between_server_batches_is_not_lost(tmp_path: Path) -> None:
    from .conftest import post, start_inventory_server

    live, feed = start_inventory_server(tmp_path, reconcile_interval=3600)
    try:
        csv_file = tmp_path / "one.csv"
        csv_file.write_text("sku,stock\nLET-BUTTER,3\n")
        result = runner.invoke(app, ["inventory", "import", str(csv_file), "--market", MARKET,
                                     "--content", str(live.content_dir), *_args(live)])
        assert result.exit_code == 0, result.output
        feed.push({"sku": "KAL-NERO", "stock": 5})  # the server's own next batch
        assert post(live, f"/api/v1/reconcile/{MARKET}/sweep").status_code == 200
        items = display_state(live, "zonneveld-greens")["items"]
        assert items["LET-BUTTER"]["stock"] == 3 and items["KAL-NERO"]["stock"] == 5
        found = get(live, f"/api/v1/reconcile/{MARKET}/mismatches").json()
        assert found == []  # a change from another writer is an update, not a mismatch
    finally:
        live.stop()
