"""Every command and subcommand of ``reporter`` has --help text (including ones added later)."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from reporter.cli import main


def walk(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from walk(sub, (*path, name))


COMMANDS = list(walk(main))


def test_the_walk_finds_the_foundation_commands() -> None:
    names = {" ".join(p) for p in COMMANDS}
    assert {"", "ingest", "generate", "project-id", "demo", "org", "org set", "org list",
            "member", "member set", "member remove"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "reporter" for p in COMMANDS])
def test_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="reporter")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: {' '.join(('reporter', *path))} ")
    command: click.Command = main
    ctx = click.Context(main)
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(ctx, name)
        assert found is not None
        command = found
    text = (command.help or "").strip()
    assert text, f"reporter {' '.join(path)} has no help text"
    first_line = " ".join(text.splitlines()[0].split())
    assert first_line in " ".join(result.output.split())
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"reporter {' '.join(path)} {param.opts[0]} has no help"


@pytest.mark.parametrize("path", COMMANDS, ids=[" ".join(p) or "reporter" for p in COMMANDS])
def test_shared_options_everywhere(path: tuple[str, ...]) -> None:
    """--config, --db and -v work on the group and on every command (``reporter --db URL run
    JOB`` and ``reporter run JOB --db URL``); subgroups take them on their commands."""
    command: click.Command = main
    ctx = click.Context(main)
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(ctx, name)
        assert found is not None
        command = found
    if path and isinstance(command, click.Group):
        return
    options = {opt for param in command.params for opt in param.opts}
    assert {"--config", "--db", "-v", "--verbose"} <= options, path
