"""SMTP delivery against a real server on loopback: faults, retries, exactly once."""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from reporter.config import Config
from reporter.jobs import ledger, plan, runner
from reporter.store import db
from tests.delivery_support import (
    NOW,
    Mailbox,
    free_port,
    seed,
    smtp_section,
    smtp_server,
    write_config,
)
from tests.tls_support import Authenticator, make_pki, tls_smtp_server

JOB = """\
output: out
jobs:
  weekly:
    period: previous-week
    audience: admins
    formats: [json]
    deliver:
      store: false
      email:
        subject: "{{ organization.name }}\\nBcc: evil@example.com, {{ period.label }}"
"""


def config_for(tmp_path: Path, port: int, retries: int = 0) -> Config:
    return write_config(tmp_path, smtp_section(port, retries) + JOB)


def run(engine: Engine, cfg: Config, hours: int = 0) -> list[str]:
    units = plan.plan(engine, cfg, "weekly", as_of=NOW)
    outcomes = runner.run_units(engine, cfg, units, now=NOW + timedelta(hours=hours))
    return [o.state if o.state != "failed" else f"failed: {o.error}" for o in outcomes]


def test_delivers_to_the_admins(tmp_path: Path, sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        assert run(sqlite_engine, config_for(tmp_path, port)) == ["delivered", "delivered"]
    assert sorted(tuple(r) for r, _ in mailbox.received) == [
        ("alice@acme.com", "bob@acme.com"), ("greta@globex.de",)]
    message = mailbox.to("alice@acme.com")[0]
    # the newline in the template's output cannot start a new header
    assert message["Subject"].strip() == ("Acme Corp Bcc: evil@example.com, Jan 5 – 11, "
                                          "2026 (New York time)")
    assert message["Bcc"] is None
    assert message["Message-ID"].endswith("@example.com>")
    assert message["Date"] == "Mon, 12 Jan 2026 15:00:00 +0000"


def test_server_down_at_start_then_delivered_once(tmp_path: Path,
                                                  sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    port = free_port()
    cfg = config_for(tmp_path, port, retries=1)
    states = run(sqlite_engine, cfg)
    assert all(s.startswith("failed: SMTP 127.0.0.1:") and "cannot connect" in s
               and "after 2 attempts" in s for s in states), states
    mailbox = Mailbox()
    with smtp_server(mailbox, port):
        assert run(sqlite_engine, cfg, hours=1) == ["delivered", "delivered"]
        assert run(sqlite_engine, cfg, hours=2) == ["already", "already"]
    assert len(mailbox.received) == 2


def test_421_is_retried(tmp_path: Path, sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    mailbox = Mailbox(faults=["421 4.3.2 try again later"])
    with smtp_server(mailbox) as port:
        assert run(sqlite_engine, config_for(tmp_path, port, retries=2)) == [
            "delivered", "delivered"]
    assert len(mailbox.received) == 2
    record = ledger.history(sqlite_engine, organization="acme")[0]
    assert record.state == "delivered"
    assert record.error is None


def test_550_fails_the_unit_with_the_reply(tmp_path: Path, sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    mailbox = Mailbox(faults=["550 5.1.1 mailbox unavailable"])
    with smtp_server(mailbox) as port:
        cfg = config_for(tmp_path, port, retries=3)
        states = run(sqlite_engine, cfg)
        assert states[0] == (f"failed: SMTP 127.0.0.1:{port}: server replied 550 5.1.1 "
                             "mailbox unavailable")
        assert states[1] == "delivered"  # the other organization is not held up
        [failed] = ledger.history(sqlite_engine, state="failed")
        assert failed.organization == "acme"
        assert "550 5.1.1" in (failed.error or "")
        # a later run delivers what is still owed, once
        assert run(sqlite_engine, cfg, hours=1) == ["delivered", "already"]
    assert sorted(len(mailbox.to(a)) for a in ("alice@acme.com", "greta@globex.de")) == [1, 1]


def test_connection_dropped_mid_data(tmp_path: Path, sqlite_engine: Engine) -> None:
    seed(sqlite_engine)
    mailbox = Mailbox(faults=["drop"])
    with smtp_server(mailbox) as port:
        cfg = config_for(tmp_path, port)
        states = run(sqlite_engine, cfg)
        assert "connection closed" in states[0] or "421" in states[0], states
        assert run(sqlite_engine, cfg, hours=1) == ["delivered", "already"]
    assert len(mailbox.to("alice@acme.com")) == 1
    assert len(mailbox.to("greta@globex.de")) == 1


SECRET = "hunter2-secret-pw"


def _everything_recorded(engine: Engine) -> str:
    with engine.connect() as conn:
        return "\n".join(str(tuple(r)) for r in conn.execute(text("SELECT * FROM runs")))


def test_login_secret_is_never_shown(tmp_path: Path, sqlite_engine: Engine,
                                     caplog: pytest.LogCaptureFixture,
                                     capfd: pytest.CaptureFixture[str]) -> None:
    """The server refuses the password (535): AUTH was reached, the secret went to the
    server and nowhere else: not the outcomes, the ledger, the log or the terminal."""
    caplog.set_level(logging.DEBUG)
    seed(sqlite_engine)
    mailbox, auth = Mailbox(), Authenticator("reports", "the-right-one")
    with tls_smtp_server(mailbox, make_pki(tmp_path), mode="none", authenticator=auth,
                         mechanism="PLAIN") as port:
        text_ = smtp_section(port, retries=2).replace(
            "  security: none\n", "  security: none\n  username: reports\n"
                                  "  password_env: SMTP_PW\n") + JOB
        cfg = write_config(tmp_path, text_, env={"SMTP_PW": SECRET})
        states = run(sqlite_engine, cfg)
        cli = _reporter(["run", "weekly", "--force", "-vv", "--from", "2026-01-05", "--to",
                         "2026-01-11", "--config", str(cfg.path), "--db",
                         str(sqlite_engine.url)], tmp_path, env={"SMTP_PW": SECRET})
        out, err = cli.communicate(timeout=120)
    assert [a[2] for a in auth.attempts] == [SECRET] * 4  # two units, in-process and the CLI
    assert all(s.startswith(f"failed: SMTP 127.0.0.1:{port}: server replied 535") for s in states)
    assert cli.returncode == 1, err
    assert "535" in out
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("reporter"))
    seen = "\n".join([*states, _everything_recorded(sqlite_engine), ours, caplog.text, out,
                      err, *capfd.readouterr()])
    assert SECRET not in seen
    assert base64.b64encode(f"\0reports\0{SECRET}".encode()).decode() not in ours + err


def _reporter(args: list[str], cwd: Path,
              env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    env = {**os.environ, **(env or {})}
    env.pop("REPORTER_DATABASE_URL", None)
    command = str(Path(sys.executable).parent / "reporter")
    return subprocess.Popen([command, *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_processes_at_once_deliver_once(tmp_path: Path, db_url: str) -> None:
    engine = db.open_engine(db_url)
    seed(engine)
    engine.dispose()
    mailbox = Mailbox()
    with smtp_server(mailbox) as port:
        cfg = config_for(tmp_path, port)
        args = ["run", "weekly", "--from", "2026-01-05", "--to", "2026-01-11",
                "--config", str(cfg.path), "--db", db_url]
        procs = [_reporter(args, tmp_path) for _ in range(2)]
        results = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        # a run that found a unit in the other's hands did not deliver it: exit 1
        assert proc.returncode == (1 if "\nheld " in "\n" + out else 0), out + err
    summaries = sorted(out.splitlines()[-1] for out, _ in results)
    delivered = sum(int(s.split("delivered ")[1].split(",")[0]) for s in summaries)
    assert delivered == 2, summaries
    assert len(mailbox.to("alice@acme.com")) == 1
    assert len(mailbox.to("greta@globex.de")) == 1
