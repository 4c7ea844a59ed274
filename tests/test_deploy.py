"""What ships for running the service for real: the systemd units (hardened, and checked by
``systemd-analyze verify`` where it is installed), the container image's entry command (run
here as a real process the way the image runs it: no container runtime runs on this machine)
and the compose file (scheduler, worker, PostgreSQL, Redis; secrets only from the
environment)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import missing
from tests.helpers import REPORTER, reporter, wait_for

ROOT = Path(__file__).resolve().parent.parent
UNITS = ROOT / "deploy" / "systemd"
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
             "PrivateTmp": "yes", "Restart": "on-failure", "User": "reporter"}


def _unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections and their keys (a key may stand more than once)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in path.read_text("utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.mark.parametrize("name", ["scheduler", "worker"])
def test_the_units_are_hardened_and_run_a_real_command(name: str) -> None:
    unit = _unit(UNITS / f"reporter-{name}.service")
    service = unit["Service"]
    for key, value in HARDENING.items():
        assert service.get(key) == [value], key
    assert service["CapabilityBoundingSet"] == [""]
    assert service["StateDirectory"] == ["reporter"]
    assert service["Environment"] == ["REPORTER_CONFIG=/etc/reporter/jobs.yaml"]
    command = service["ExecStart"][0].split()
    assert command[0].endswith("/bin/reporter")
    assert command[1:] == [name]
    assert reporter(*command[1:], "--help", cwd=ROOT).returncode == 0
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    if name == "scheduler":  # SIGHUP re-reads the jobs file
        assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]


def test_systemd_analyze_verifies_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        missing("systemd-analyze (Debian's systemd)")
    for unit in UNITS.glob("*.service"):  # the installed path is this checkout's venv here
        text = unit.read_text("utf-8").replace("/opt/reporter/.venv/bin/reporter",
                                                str(REPORTER))
        (tmp_path / unit.name).write_text(text, "utf-8")
    units = sorted(str(p) for p in tmp_path.glob("*.service"))
    assert len(units) == 2
    verified = subprocess.run([analyze, "verify", *units], capture_output=True, text=True,
                              check=False)
    assert verified.returncode == 0, verified.stderr
    assert verified.stderr == ""
    for unit in units:
        security = subprocess.run([analyze, "security", "--offline=yes", unit],
                                  capture_output=True, text=True, check=False)
        level = re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout)
        assert level is not None, security.stdout + security.stderr
        assert float(level.group(1)) <= 4.0, security.stdout


def _dockerfile() -> dict[str, str]:
    instructions: dict[str, str] = {}
    for line in (ROOT / "Dockerfile").read_text("utf-8").splitlines():
        word, _, rest = line.partition(" ")
        if word.isupper():
            instructions[word] = rest.strip()
    return instructions


def test_the_image_installs_what_setup_installs() -> None:
    text = (ROOT / "Dockerfile").read_text("utf-8")
    setup = (ROOT / "scripts" / "setup.sh").read_text("utf-8")
    base = re.search(r"packages=\(python3-venv python3-dev ([^)]*)\)", setup)
    assert base is not None
    for package in base.group(1).split():
        assert package in text, package


def test_the_image_entry_command_runs_the_scheduler(tmp_path: Path) -> None:
    """``ENTRYPOINT`` + ``CMD`` with the image's environment and the shipped jobs file, as a
    real process: it starts, reloads on SIGHUP, and stops cleanly on SIGTERM."""
    docker = _dockerfile()
    command = json.loads(docker["ENTRYPOINT"]) + json.loads(docker["CMD"])
    assert command == ["reporter", "scheduler"]
    assert docker["STOPSIGNAL"] == "SIGTERM"
    env = {**os.environ, "REPORTER_CONFIG": str(ROOT / "deploy" / "jobs.yaml"),
           "REPORTER_DATABASE_URL": f"sqlite:///{tmp_path / 'reporter.db'}",
           "REPORTER_BROKER_URL": "redis://127.0.0.1:6379/15"}
    process = subprocess.Popen([str(REPORTER), *command[1:]], cwd=tmp_path, env=env,
                               stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    try:
        assert process.stderr is not None

        def saw(text: str) -> bool:
            assert process.stderr is not None
            while not any(text in line for line in lines):
                line = process.stderr.readline()
                if not line:
                    return False
                lines.append(line)
            return True

        wait_for("the scheduler to lead", lambda: saw("leading as"))
        process.send_signal(signal.SIGHUP)
        wait_for("the reload", lambda: saw("reloaded"))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, "".join(lines)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()
    assert not any("Traceback" in line for line in lines)


def test_the_compose_file_runs_scheduler_worker_postgresql_and_redis() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text("utf-8"))
    services = compose["services"]
    assert sorted(services) == ["db", "redis", "scheduler", "worker"]
    docker = _dockerfile()
    config_path = re.search(r"REPORTER_CONFIG=(\S+)", docker["ENV"])
    assert config_path is not None
    for name in ("scheduler", "worker"):
        service = services[name]
        assert service["command"][0] == name
        assert reporter(*service["command"], "--help", cwd=ROOT).returncode == 0
        assert f"./deploy/jobs.yaml:{config_path.group(1)}:ro" in service["volumes"]
        environment = service["environment"]
        assert environment["REPORTER_DATABASE_URL"].startswith("postgresql://reporter:${")
        assert environment["REPORTER_BROKER_URL"] == "redis://redis:6379/0"
        assert set(service["depends_on"]) == {"db", "redis"}
    # no secret stands in the file: every password is a variable
    text = (ROOT / "compose.yaml").read_text("utf-8")
    assert re.findall(r"PASSWORD: \"([^\"]*)\"", text) == [
        "${REPORTER_SMTP_PASSWORD:-}", "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"]


def test_the_deployed_jobs_file_validates(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    args = ("--config", str(ROOT / "deploy" / "jobs.yaml"), "validate", "--db",
            f"sqlite:///{tmp_path / 'r.db'}")
    monkeypatch.delenv("REPORTER_SMTP_PASSWORD", raising=False)
    unset = reporter(*args, cwd=tmp_path)  # the secret the service's environment holds
    assert unset.returncode == 1
    assert "REPORTER_SMTP_PASSWORD (password_env) is not set" in unset.stderr
    monkeypatch.setenv("REPORTER_SMTP_PASSWORD", "from-the-environment")
    result = reporter(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ok (2 jobs)" in result.stdout
