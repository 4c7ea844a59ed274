"""WeasyPrint's import answers its library lookups from the linker's cache: the same answers
as ``ctypes.util.find_library``, the real function back afterwards, and none of it where the
cache may not be the whole answer."""

from __future__ import annotations

import ctypes.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from reporter.render import weasyload

#: every name WeasyPrint's text/ffi.py asks for, read from the installed WeasyPrint
NAMES = sorted(set(re.findall(
    r"'([^']+)'",
    "".join(re.findall(r"_dlopen\(\s*ffi,([^)]*)\)",
                       (Path(__import__("weasyprint").__file__).parent / "text" / "ffi.py")
                       .read_text(encoding="utf-8"))))))


@pytest.mark.skipif(sys.platform != "linux", reason="the linker cache is Linux's")
def test_the_cache_answers_as_find_library_does() -> None:
    listing = weasyload._linker_cache()
    assert listing is not None
    find = weasyload.finder(listing)
    assert len(NAMES) > 20
    assert "pango-1.0" in NAMES
    assert {name: find(name) for name in NAMES} == {
        name: ctypes.util.find_library(name) for name in NAMES}


def test_find_library_is_itself_again_after_the_import() -> None:
    code = ("import ctypes.util\nreal = ctypes.util.find_library\n"
            "import reporter.render.pdf_report\n"
            "from weasyprint.text import ffi\n"
            "print(ctypes.util.find_library is real, ffi.pango is not None)")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout.split()
    assert out == ["True", "True"]


def test_it_steps_aside_with_ld_library_path(monkeypatch: pytest.MonkeyPatch) -> None:
    real = ctypes.util.find_library
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/lib")
    with weasyload.lookups_from_the_linker_cache():
        assert ctypes.util.find_library is real
    monkeypatch.delenv("LD_LIBRARY_PATH")
    with weasyload.lookups_from_the_linker_cache():
        assert (ctypes.util.find_library is real) == (sys.platform != "linux")
    assert ctypes.util.find_library is real


@pytest.mark.skipif(sys.platform != "linux", reason="the linker cache is Linux's")
def test_a_path_that_is_not_utf8_in_the_cache_never_fails_the_import(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a library folder named in Latin-1 (ld.so.conf), as `ldconfig -p` prints it
    fake = tmp_path / "ldconfig"
    fake.write_bytes(b"#!/bin/sh\nprintf '2 libs found\\n"
                     b"\\tlibz.so.1 (libc6,x86-64) => /opt/caf\\351/libz.so.1\\n"
                     b"\\tlibz.so.1 (libc6) => /opt/caf\\351/32/libz.so.1\\n'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setattr(os, "uname", lambda: os.uname_result(
        ("Linux", "h", "r", "v", "x86_64")))
    real = ctypes.util.find_library
    with weasyload.lookups_from_the_linker_cache():  # raised UnicodeDecodeError before
        assert ctypes.util.find_library("z") == "libz.so.1"
        assert ctypes.util.find_library("zz") is None
    assert ctypes.util.find_library is real


def test_only_this_machines_abi_answers() -> None:
    listing = ("3 libs found in cache `/etc/ld.so.cache'\n"
               "\tlibfoo.so.2 (libc6) => /lib/i386-linux-gnu/libfoo.so.2\n"
               "\tlibfoo.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libfoo.so.1\n"
               "\tlibfoo+bar.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libfoo+bar.so.3\n")
    find = weasyload.finder(listing)
    if os.uname().machine == "x86_64" and sys.maxsize > 2**32:
        assert find("foo") == "libfoo.so.1"
        assert find("foo+bar") == "libfoo+bar.so.3"
        assert find("fo.") is None
