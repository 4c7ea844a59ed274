"""An operator's day at the command line: mistakes caught before anything is written, data
corrected and removed, channels tested before the first run, and a demo that never reaches a
real person."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from reporter.jobs import ledger
from reporter.jobs.units import DELIVERED
from reporter.store import db
from reporter.store.schema import usage_events, users
from tests.delivery_support import Mailbox, seed, smtp_section, smtp_server
from tests.helpers import GOOD, HEADER, REPORTER, reporter, row, write_csv, write_jsonl
from tests.hookserver import hook_server


def _count(engine: Engine, table: type) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(select(func.count()).select_from(table)) or 0)


# -- a jobs file that was named must exist ---------------------------------------------------

@pytest.mark.parametrize("args", [
    ("ingest", "dec.csv"), ("org", "set", "acme"), ("member", "set", "acme", "a@acme.com"),
    ("generate", "--org", "acme"), ("org", "list"), ("validate",), ("demo",)])
def test_a_named_jobs_file_that_is_missing_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: tuple[str, ...]) -> None:
    write_csv(tmp_path / "dec.csv", GOOD)
    (tmp_path / "pg.yaml").write_text("database: postgresql://nowhere/none\njobs: {}\n")
    result = reporter("--config", "pg.yml", *args, cwd=tmp_path)
    assert result.returncode == 1, result.stdout
    assert result.stderr == "reporter: error: --config pg.yml: no such file\n"
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dec.csv", "pg.yaml"]
    # after the command's name too, and through REPORTER_CONFIG
    assert reporter(*args, "--config", "pg.yml", cwd=tmp_path).returncode == 1
    monkeypatch.setenv("REPORTER_CONFIG", "nope.yaml")
    named = reporter(*args, cwd=tmp_path)
    assert named.stderr == "reporter: error: REPORTER_CONFIG nope.yaml: no such file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dec.csv", "pg.yaml"]


def test_reporter_config_names_the_jobs_file(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'named.db'}"
    (tmp_path / "elsewhere.yaml").write_text(f"database: {url}\njobs: {{}}\n")
    write_csv(tmp_path / "dec.csv", GOOD)
    monkeypatch.setenv("REPORTER_CONFIG", str(tmp_path / "elsewhere.yaml"))
    result = reporter("ingest", "dec.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "named.db").exists()
    assert not (tmp_path / "reporter.db").exists()


# -- organizations and members: said when created, listed, removed ---------------------------

def test_member_list_and_org_remove(cli, engine: Engine) -> None:  # type: ignore[no-untyped-def]
    seed(engine)
    cli("member", "set", "acme", "alice@acme.com", "--monthly-budget", "500")
    listed = cli("member", "list", "acme")
    assert listed.exit_code == 0, listed.output
    assert listed.output.splitlines() == [
        "email\tname\trole\tmonthly budget",
        "alice@acme.com\tAlice Anders\towner\t500.00",
        "bob@acme.com\tBob Baker\tadmin\t-",
        "carol@acme.com\tCarol Chen\tmember\t-"]
    everyone = json.loads(cli("member", "list", "acme", "--all", "--json").output)
    assert [(m["email"], m["removed"]) for m in everyone][-1] == ("dave@acme.com", True)
    assert everyone[0]["monthly_budget_usd"] == "500.00"
    # greta is in globex too: she stays a user there
    cli("member", "set", "acme", "greta@globex.de")
    before_users = _count(engine, users)
    dry = cli("org", "remove", "acme")
    assert dry.exit_code == 1
    assert dry.stdout == ("acme: would delete 4 usage events, 5 members, 0 run records, "
                          "4 users in no other organization\n")
    assert "--yes" in dry.stderr
    assert _count(engine, usage_events) == 5  # nothing deleted
    done = cli("org", "remove", "acme", "--yes")
    assert done.exit_code == 0, done.output
    assert done.stdout == dry.stdout.replace("would delete", "deleted")
    assert _count(engine, usage_events) == 1
    assert _count(engine, users) == before_users - 4
    assert cli("org", "list").output.splitlines()[1:] == ["globex\tGlobex GmbH\tEurope/Berlin\t-"]
    assert cli("member", "list", "globex").output.splitlines()[1:] == [
        "greta@globex.de\tGreta Gruber\towner\t-"]
    gone = cli("org", "remove", "acme", "--yes")
    assert gone.exit_code == 1
    assert gone.stderr == "reporter: error: unknown organization 'acme'\n"


# -- validate warns about what the data lacks ------------------------------------------------

def test_validate_warns_about_organizations_that_cannot_receive(  # type: ignore[no-untyped-def]
        cli, tmp_path: Path) -> None:
    write_csv(tmp_path / "u.csv", [row("1", "2026-01-05T10:00:00Z", org="northwind")])
    assert "created organization northwind" in cli("ingest", "u.csv").output
    (tmp_path / "jobs.yaml").write_text(textwrap.dedent("""\
        jobs:
          weekly:
            schedule: "0 7 * * mon"
            period: previous-week
            audience: admins
            deliver: {email: true}
        """))
    result = cli("validate")
    assert result.exit_code == 0, result.output
    warnings = result.stderr.splitlines()
    assert len(warnings) == 2
    assert warnings[0].startswith("warning: organization 'northwind' has no owner or admin, "
                                  "so job(s) weekly will fail")
    assert "still has the defaults" in warnings[1]
    cli("member", "set", "northwind", "alice@acme.com", "--role", "owner")
    cli("org", "set", "northwind", "--name", "Northwind", "--timezone", "Europe/Oslo")
    again = cli("validate")
    assert again.exit_code == 0
    assert again.stderr == ""


# -- ingest: special-use domains, unknown columns and keys, delimiters, exponents ------------

def test_special_use_domains_are_members_like_any_other(cli, engine: Engine,  # type: ignore[no-untyped-def]
                                                        tmp_path: Path) -> None:
    rows = [row(str(n), "2026-01-05T10:00:00Z", email=email, cost="1")
            for n, email in enumerate(["alice@corp.local", "dev@build.test",
                                       "ops@host.internal", "x@localhost"])]
    result = cli("ingest", str(write_csv(tmp_path / "u.csv", rows)))
    assert result.exit_code == 0, result.output
    assert "inserted 4, duplicate 0, rejected 0" in result.stdout
    assert cli("member", "set", "acme", "Root@Corp.Local", "--role", "admin").exit_code == 0
    emails = [m["email"] for m in json.loads(cli("member", "list", "acme", "--json").output)]
    assert emails == ["alice@corp.local", "dev@build.test", "ops@host.internal",
                      "root@corp.local", "x@localhost"]


def test_unknown_columns_are_left_out_with_one_warning(tmp_path: Path) -> None:
    rows = [{**r, "region": "eu", "team": "a"} for r in GOOD]
    write_csv(tmp_path / "u.csv", rows, header=[*HEADER, "region", "team"])
    write_jsonl(tmp_path / "u.jsonl", [
        {**row("j1", "2024-05-01T10:00:00Z"), "zone": 1},
        {**row("j2", "2024-05-01T10:00:00Z"), "zone": 2, "host": "h"},
        row("j3", "2024-05-01T10:00:00Z")])
    result = reporter("ingest", "u.csv", "u.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "reporter: warning: u.csv: ignored unknown columns 'region', 'team' "
        "(--strict refuses them)",
        "reporter: warning: u.jsonl: ignored unknown keys 'host', 'zone' "
        "(--strict refuses them)"]
    assert result.stdout.endswith("inserted 6, duplicate 0, rejected 0\n")
    strict = reporter("ingest", "--strict", "u.csv", "u.jsonl", "--db", "sqlite:///s.db",
                      cwd=tmp_path)
    assert strict.returncode == 1
    lines = strict.stderr.splitlines()
    assert lines[0].startswith("reporter: error: u.csv:1: unknown column(s) 'region', 'team'")
    assert lines[1].startswith("u.jsonl:1: unknown key 'zone'")
    assert lines[2].startswith("u.jsonl:2: unknown keys 'host', 'zone'")
    assert strict.stdout.endswith("inserted 1, duplicate 0, rejected 2\n")


@pytest.mark.parametrize(("delimiter", "called"), [(";", "';'"), ("\t", "a tab")])
def test_another_delimiter_is_named(cli, tmp_path: Path, delimiter: str,  # type: ignore[no-untyped-def]
                                    called: str) -> None:
    path = tmp_path / "semi.csv"
    path.write_text(delimiter.join(HEADER) + "\n" + delimiter.join(GOOD[0].values()) + "\n")
    result = cli("ingest", str(path))
    assert result.exit_code == 1
    assert result.stderr.splitlines()[0] == (
        f"reporter: error: {path}:1: the header is separated by {called}, not ',': reporter "
        f"reads comma-separated CSV (export the file again with ',' as the delimiter)")


def test_one_cost_rule_for_csv_and_json_lines(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    write_csv(tmp_path / "c.csv", [row("c", "2024-05-01T10:00:00Z", cost="1e-3")])
    (tmp_path / "c.jsonl").write_text(json.dumps(row("j", "2024-05-01T10:00:00Z"))
                                      .replace('"cost_usd": "0.01"', '"cost_usd": 1e-3') + "\n"
                                      + json.dumps(row("k", "2024-05-01T10:00:00Z"))
                                      .replace('"cost_usd": "0.01"', '"cost_usd": 0.001') + "\n")
    result = cli("ingest", "c.csv", "c.jsonl")
    assert result.exit_code == 1
    why = "cost_usd '1e-3' is not a decimal number (plain digits and a point)"
    assert result.stderr.splitlines() == [f"c.csv:2: {why}", f"c.jsonl:1: {why}"]
    assert "inserted 1, duplicate 0, rejected 2" in result.stdout


# -- backfill --store-only -------------------------------------------------------------------

def test_backfill_store_only_sends_nothing_and_is_recorded(  # type: ignore[no-untyped-def]
        cli, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        db_url: str) -> None:
    seed(engine)
    mailbox = Mailbox()
    with smtp_server(mailbox) as port, hook_server() as hook:
        monkeypatch.setenv("TEAM_HOOK", hook.url)
        (tmp_path / "jobs.yaml").write_text(smtp_section(port) + textwrap.dedent("""\
            output: out
            jobs:
              weekly:
                schedule: "0 7 * * mon"
                period: previous-week
                audience: admins
                formats: [json]
                deliver:
                  store: false
                  email: true
                  webhook: {url_env: TEAM_HOOK}
            """))
        result = cli("backfill", "weekly", "--from", "2025-12-29", "--to", "2026-01-11",
                     "--store-only")
        assert result.exit_code == 0, result.output
        assert mailbox.received == []
        assert hook.posts == []
        stored = sorted(p.name for p in (tmp_path / "out").rglob("*_20*.json"))
        assert len(stored) == 4  # two weeks, two organizations
        records = ledger.history(engine, job="weekly")
        assert {r.state for r in records} == {DELIVERED}
        assert len(records) == 4
        assert all(r.recipients == () or list(r.recipients) == [] for r in records)
        # a later backfill does not email the stored periods unless --force
        again = cli("backfill", "weekly", "--from", "2025-12-29", "--to", "2026-01-11")
        assert again.exit_code == 0, again.output
        assert mailbox.received == []
        forced = cli("backfill", "weekly", "--from", "2026-01-05", "--to", "2026-01-11",
                     "--force")
        assert forced.exit_code == 0, forced.output
        assert sorted(mailbox.counts()) == ["alice@acme.com", "bob@acme.com",
                                            "greta@globex.de"]
        assert len(hook.posts) == 2


# -- send-test -------------------------------------------------------------------------------

def test_send_test_through_each_channel(cli, tmp_path: Path,  # type: ignore[no-untyped-def]
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    mailbox = Mailbox()
    body = textwrap.dedent("""\
        jobs:
          weekly:
            schedule: "0 7 * * mon"
            period: previous-week
            audience: admins
            deliver:
              email: true
              webhook: {url_env: TEAM_HOOK, retries: 0}
          finance:
            schedule: "0 7 * * mon"
            period: previous-week
            audience: [cfo@corp.local]
            deliver: {email: true}
          quiet:
            schedule: "0 7 * * mon"
            period: previous-week
            audience: admins
            deliver: {store: true}
        """)
    with smtp_server(mailbox) as port, hook_server() as hook:
        monkeypatch.setenv("TEAM_HOOK", hook.url)
        (tmp_path / "jobs.yaml").write_text(smtp_section(port) + body)
        result = cli("send-test", "weekly", "--to", "ops@corp.local")
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines() == [
            f"email: ok: SMTP 127.0.0.1:{port} accepted it for ops@corp.local",
            "webhook: ok: webhook $TEAM_HOOK accepted the post"]
        assert [m["Subject"] for _, m in mailbox.received] == [
            "reporter test message for job weekly"]
        assert hook.posts[0]["text"] == "reporter test message for job weekly"
        assert "secret-token" not in result.output
        # the job's own address list, without --to
        assert cli("send-test", "finance").exit_code == 0
        assert mailbox.counts()["cfo@corp.local"] == 1
        hook.script = ["400"]
        failed = cli("send-test", "weekly", "--to", "ops@corp.local")
        assert failed.exit_code == 1
        assert ("webhook: failed: webhook $TEAM_HOOK refused the post: HTTP 400 (no)"
                in failed.stdout)
        nothing = cli("send-test", "quiet")
        assert nothing.exit_code == 1
        assert nothing.stderr == ("reporter: error: job 'quiet' sends no email and posts to "
                                  "no webhook; nothing to test\n")
    # the mail server is gone: one line saying so
    down = cli("send-test", "weekly", "--to", "ops@corp.local")
    assert down.exit_code == 1
    assert down.stdout.startswith(f"email: failed: SMTP 127.0.0.1:{port}: cannot connect")
    # without an smtp section the test lands in the outbox
    (tmp_path / "jobs.yaml").write_text(body.replace("      webhook: {url_env: TEAM_HOOK, "
                                                     "retries: 0}\n", ""))
    outbox = cli("send-test", "weekly", "--to", "ops@corp.local")
    assert outbox.exit_code == 0, outbox.output
    assert outbox.stdout.startswith("email: ok: no smtp section: written to output/outbox/")


# -- the demo ---------------------------------------------------------------------------------

def test_the_demo_refuses_a_database_with_other_data(cli, engine: Engine,  # type: ignore[no-untyped-def]
                                                     tmp_path: Path, db_url: str) -> None:
    (tmp_path / "jobs.yaml").write_text("jobs: {}\n")
    cli("org", "set", "northwind")
    result = cli("demo", "--days", "3")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"reporter: error: the database {db.display_url(db_url)} holds data that is not the "
        f"demo's (organization 'northwind'); the demo runs only on an empty or demo-only "
        f"database: name one with --db")
    assert _count(engine, usage_events) == 0
    cli("org", "remove", "northwind", "--yes")
    assert cli("demo", "--days", "3").exit_code == 0
    assert cli("demo", "--days", "3").exit_code == 0  # demo data again: fine
    write_csv(tmp_path / "u.csv", [row("real-1", "2026-01-05T10:00:00Z",
                                       email="alice@acme.com")])
    cli("ingest", "u.csv")
    refused = cli("demo", "--days", "3")
    assert refused.exit_code == 1
    assert "(usage event 'real-1')" in refused.stderr
    cli("member", "set", "acme", "real@person.com")
    assert "(member real@person.com of acme)" in cli("demo", "--days", "3").stderr


def test_the_demo_never_overwrites_an_organization_someone_set_up(  # type: ignore[no-untyped-def]
        cli, tmp_path: Path) -> None:
    (tmp_path / "jobs.yaml").write_text("jobs: {}\n")
    cli("org", "set", "acme", "--name", "Real Acme Inc", "--timezone", "Europe/Paris")
    refused = cli("demo", "--days", "3")
    assert refused.exit_code == 1
    assert "(organization 'acme')" in refused.stderr
    listed = cli("org", "list")
    assert "Real Acme Inc" in listed.stdout


def test_the_demo_delivers_only_to_the_outbox(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """A real process in a folder whose jobs.yaml names a mail server and a webhook: the
    demo's reports land in the outbox; the server and the hook hear nothing."""
    mailbox = Mailbox()
    with smtp_server(mailbox) as port, hook_server() as hook:
        (tmp_path / "jobs.yaml").write_text(smtp_section(port) + textwrap.dedent("""\
            output: out
            sources:
              gateway: {kind: litellm, url_env: NO_SUCH_GATEWAY, organization: acme}
            jobs:
              weekly:
                schedule: "0 7 * * mon"
                period: previous-week
                audience: admins
                formats: [json]
                sync: true
                deliver:
                  email: true
                  webhook: {url_env: DEMO_HOOK}
            """))
        monkeypatch.setenv("DEMO_HOOK", hook.url)
        result = reporter("demo", "--days", "14", cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert mailbox.received == []
        assert hook.posts == []
        assert len(list((tmp_path / "out" / "outbox").glob("*.eml"))) >= 4


# -- conventions -------------------------------------------------------------------------------

def test_python_dash_m_and_shell_completion(tmp_path: Path) -> None:
    module = subprocess.run([sys.executable, "-m", "reporter", "ingest",
                             str(Path(__file__).parent.parent / "examples" / "usage.csv")],
                            cwd=tmp_path, capture_output=True, text=True, check=False)
    assert module.returncode == 0, module.stderr
    assert module.stdout.endswith("inserted 8, duplicate 0, rejected 0\n")
    listed = reporter("org", "list", cwd=tmp_path)
    assert listed.stdout == "slug\tname\ttimezone\tmonthly budget\nacme\tacme\tUTC\t-\n"
    env = {**os.environ, "_REPORTER_COMPLETE": "bash_source"}
    completion = subprocess.run([str(REPORTER)], env=env, capture_output=True, text=True,
                                check=False, cwd=tmp_path)
    assert completion.returncode == 0
    assert "_reporter_completion()" in completion.stdout
