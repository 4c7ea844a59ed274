"""Compiled templates are kept for the next process in the user's own cache folder, read
back instead of compiled again, and a cache that cannot be read or written never fails a
report."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from jinja2 import Environment, FileSystemLoader

from reporter.render import templating


def _env(folder: Path, cache: templating._CompiledCache) -> Environment:
    (folder / "t.html").write_text("{{ 1 + 1 }} {{ name }}", encoding="utf-8")
    return Environment(loader=FileSystemLoader(str(folder)), bytecode_cache=cache)


def _folders(tmp_path: Path) -> tuple[Path, Path]:
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir(mode=0o700)
    (tmp_path / "t").mkdir()
    return cache_dir, tmp_path / "t"


def test_a_template_is_compiled_once_for_every_process(tmp_path: Path) -> None:
    cache_dir, templates = _folders(tmp_path)
    first = _env(templates, templating._CompiledCache(str(cache_dir)))
    assert first.get_template("t.html").render(name="a") == "2 a"
    assert len(list(cache_dir.iterdir())) == 1
    # a new environment (as a new process has) reads it instead of compiling it
    second = _env(templates, templating._CompiledCache(str(cache_dir)))
    compiled: list[str] = []
    real = second._compile

    def counted(source: str, filename: str) -> object:
        compiled.append(filename)
        return real(source, filename)

    second._compile = counted  # type: ignore[method-assign,assignment]
    assert second.get_template("t.html").render(name="b") == "2 b"
    assert compiled == []
    # a changed source is compiled again
    (templates / "t.html").write_text("{{ 2 + 2 }}", encoding="utf-8")
    third = Environment(loader=FileSystemLoader(str(templates)),
                        bytecode_cache=templating._CompiledCache(str(cache_dir)))
    assert third.get_template("t.html").render() == "4"


@pytest.mark.parametrize("fault", ["folder removed", "file damaged"])
def test_a_cache_that_fails_never_fails_the_template(tmp_path: Path, fault: str) -> None:
    cache_dir, templates = _folders(tmp_path)
    _env(templates, templating._CompiledCache(str(cache_dir))).get_template("t.html")
    if fault == "folder removed":  # cleaned away under a running service
        shutil.rmtree(cache_dir)
    else:
        for kept in cache_dir.iterdir():
            kept.write_bytes(kept.read_bytes()[:40])
    env = _env(templates, templating._CompiledCache(str(cache_dir)))
    assert env.get_template("t.html").render(name="c") == "2 c"


def test_the_cache_is_the_users_own_never_a_shared_temporary_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    cache = templating._compiled_cache()
    assert isinstance(cache, templating._CompiledCache)
    folder = templating.cache_folder()
    assert folder is not None
    assert folder.parent == tmp_path / "xdg" / "reporter"
    assert folder.stat().st_mode & 0o777 == 0o700
    monkeypatch.delenv("XDG_CACHE_HOME")
    default = templating.cache_folder()
    assert default is not None
    assert default.is_relative_to(Path.home())
    assert not default.is_relative_to(tempfile.gettempdir())


def test_no_cache_without_a_folder_to_keep_it_in(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("", encoding="utf-8")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # a file where the folder would be
    assert templating._compiled_cache() is None
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # ignored, as the spec says
    folder = templating.cache_folder()
    assert folder is not None
    assert folder.is_absolute()


def test_compiled_code_of_another_jinja_or_other_options_is_kept_apart(
        monkeypatch: pytest.MonkeyPatch) -> None:
    before = templating.cache_folder()
    monkeypatch.setattr(templating, "_COMPILED_WITH", "jinja2 9.9; autoescape")
    assert templating.cache_folder() != before
