"""Compiled templates are kept for the next process, and a cache that cannot be read or
written never fails a report."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from jinja2 import Environment, FileSystemLoader

from reporter.render import templating


def _env(folder: Path, cache: templating._CompiledCache) -> Environment:
    (folder / "t.html").write_text("{{ 1 + 1 }} {{ name }}", encoding="utf-8")
    return Environment(loader=FileSystemLoader(str(folder)), bytecode_cache=cache)


def test_a_template_is_compiled_once_for_every_process(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir(mode=0o700)
    (tmp_path / "t").mkdir()
    first = _env(tmp_path / "t", templating._CompiledCache(str(cache_dir)))
    assert first.get_template("t.html").render(name="a") == "2 a"
    assert len(list(cache_dir.iterdir())) == 1
    # a new environment (as a new process has) reads it; a changed source is compiled again
    second = _env(tmp_path / "t", templating._CompiledCache(str(cache_dir)))
    assert second.get_template("t.html").render(name="b") == "2 b"
    (tmp_path / "t" / "t.html").write_text("{{ 2 + 2 }}", encoding="utf-8")
    third = Environment(loader=FileSystemLoader(str(tmp_path / "t")),
                        bytecode_cache=templating._CompiledCache(str(cache_dir)))
    assert third.get_template("t.html").render() == "4"


@pytest.mark.parametrize("fault", ["folder removed", "file damaged"])
def test_a_cache_that_fails_never_fails_the_template(tmp_path: Path, fault: str) -> None:
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir(mode=0o700)
    (tmp_path / "t").mkdir()
    _env(tmp_path / "t", templating._CompiledCache(str(cache_dir))).get_template("t.html")
    if fault == "folder removed":  # a cleaner of temporary files, under a running service
        shutil.rmtree(cache_dir)
    else:
        for kept in cache_dir.iterdir():
            kept.write_bytes(kept.read_bytes()[:40])
    env = _env(tmp_path / "t", templating._CompiledCache(str(cache_dir)))
    assert env.get_template("t.html").render(name="c") == "2 c"


def test_the_shared_environment_has_the_cache() -> None:
    env = templating.environment()
    assert isinstance(env.bytecode_cache, templating._CompiledCache)
