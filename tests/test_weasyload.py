"""WeasyPrint's import answers its library lookups from the linker's cache: the same answers
as ``ctypes.util.find_library``, the real function back afterwards, and none of it where the
cache may not be the whole answer."""

from __future__ import annotations

import ctypes.util
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
