"""Project ids as clients attach them: .kilocode/config.json, else the origin remote's name."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

log = logging.getLogger(__name__)

_SECTION = re.compile(r'^\s*\[\s*([A-Za-z0-9.-]+)(?:\s+"((?:[^"\\]|\\.)*)")?\s*\]\s*(.*)$')
_KEY = re.compile(r"^\s*([A-Za-z][A-Za-z0-9-]*)\s*(?:=\s*(.*))?$")


def _strip_value(raw: str) -> str:
    """A git config value without its comment and quotes."""
    out, quoted, escaped = [], False, False
    for char in raw:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char in "#;" and not quoted:
            break
        else:
            out.append(char)
    return "".join(out).strip()


def origin_url(config_text: str) -> str | None:
    """The ``url`` of ``[remote "origin"]`` in a git config file (the last one wins)."""
    section: tuple[str, str | None] | None = None
    url = None
    for line in config_text.splitlines():
        stripped = line.strip()
        if not stripped or stripped[0] in "#;":
            continue
        header = _SECTION.match(stripped)
        if header and stripped.startswith("["):
            name, sub = header.group(1).lower(), header.group(2)
            if sub is None and "." in name:  # deprecated [remote.origin] form
                name, sub = name.split(".", 1)
            section = (name, sub)
            line = header.group(3)
            if not line.strip():
                continue
        entry = _KEY.match(line)
        if entry and section == ("remote", "origin") and entry.group(1).lower() == "url":
            url = _strip_value(entry.group(2) or "")
    return url or None


def repo_name(url: str) -> str | None:
    """``git@github.com:example-co/example-repo.git`` -> ``example-repo`` (any URL form)."""
    text = url.strip()
    text = re.split(r"[?#]", text, maxsplit=1)[0] if "://" in text else text
    text = text.rstrip("/\\ ")
    if text.lower().endswith(".git"):
        text = text[:-4].rstrip("/\\")
    if "://" in text:
        text = text.split("://", 1)[1]
        text = text.split("/", 1)[1] if "/" in text else ""
    name = re.split(r"[/\\:]", text)[-1]
    return name or None


def _git_config(git: Path) -> Path | None:
    """The config file of a repository whose ``.git`` is ``git`` (a folder or a gitdir file)."""
    if git.is_dir():
        return git / "config"
    try:
        content = git.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not content.startswith("gitdir:"):
        return None
    gitdir = Path(content[len("gitdir:"):].strip())
    if not gitdir.is_absolute():
        gitdir = (git.parent / gitdir).resolve()
    commondir = gitdir / "commondir"
    if commondir.is_file():  # a worktree: the config lives in the main repository
        common = Path(commondir.read_text(encoding="utf-8").strip())
        gitdir = common if common.is_absolute() else (gitdir / common).resolve()
    return gitdir / "config"


def _kilocode_id(folder: Path) -> str | None:
    config = folder / ".kilocode" / "config.json"
    if not config.is_file():
        return None
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
        value = data["project"]["id"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: ignored (%s); falling back to the git remote", config,
                    type(exc).__name__ if not str(exc) else str(exc).splitlines()[0])
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        log.warning("%s: project.id is not a non-empty string; falling back to the git remote",
                    config)
        return None
    return value.strip()


def project_id(path: Path | str = ".") -> str | None:
    """The project id for work done in ``path``; None when the rule gives none."""
    start = Path(path).resolve()
    folder = start if start.is_dir() else start.parent
    for candidate in (folder, *folder.parents):
        found = _kilocode_id(candidate)
        if found:
            return found
        git = candidate / ".git"
        if git.exists():
            config = _git_config(git)
            if config is None or not config.is_file():
                return None
            url = origin_url(config.read_text(encoding="utf-8", errors="replace"))
            return repo_name(url) if url else None
    return None
