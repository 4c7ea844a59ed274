"""Importing WeasyPrint without a subprocess for each name of a native library.

WeasyPrint opens GObject, Pango, HarfBuzz and Fontconfig trying several names each, those of
Windows and macOS first. Each name the dynamic linker does not take sends cffi to
``ctypes.util.find_library``, which on Linux runs ``ldconfig -p`` and then ``gcc`` and ``ld``
for a name it does not find: 22 lookups, about 0.15 s of a report's cold start. While
WeasyPrint is imported, ``lookups_from_the_linker_cache`` answers those lookups from one read
of the linker's cache, with the rule ``find_library`` applies to it. It steps aside where the
cache may not be the whole answer (``LD_LIBRARY_PATH`` set, another system, no ``ldconfig``).
"""

from __future__ import annotations

import contextlib
import ctypes.util
import os
import re
import shutil
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

#: ldconfig's name for this machine's ABI, as ``ctypes.util`` reads it
_ABI = {"x86_64-64": "libc6,x86-64", "ppc64-64": "libc6,64bit", "sparc64-64": "libc6,64bit",
        "s390x-64": "libc6,64bit", "ia64-64": "libc6,IA-64"}


def _linker_cache() -> str | None:
    """What ``ldconfig -p`` lists, or None where it cannot be asked."""
    ldconfig = shutil.which("ldconfig") or next(
        (path for path in ("/sbin/ldconfig", "/usr/sbin/ldconfig") if os.path.exists(path)),
        None)
    if ldconfig is None:
        return None
    try:
        listing = subprocess.run([ldconfig, "-p"], capture_output=True, stdin=subprocess.DEVNULL,
                                 env={"LC_ALL": "C", "LANG": "C"}, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    # bytes as find_library reads them: a path that is not UTF-8 must not fail the import
    return os.fsdecode(listing.stdout)


def finder(listing: str) -> Callable[[str], str | None]:
    """``find_library`` over ``listing`` (``ldconfig -p``): the soname of ``lib<name>.*`` for
    this machine's ABI, None for a name the cache does not hold."""
    machine = os.uname().machine + ("-64" if struct.calcsize("l") == 8 else "-32")
    abi = _ABI.get(machine, "libc6")

    def find(name: str) -> str | None:
        found = re.search(rf"\s+(lib{re.escape(name)}\.[^\s]+)\s+\({re.escape(abi)}", listing)
        return found.group(1) if found else None

    return find


@contextlib.contextmanager
def lookups_from_the_linker_cache() -> Iterator[None]:
    """While inside, ``ctypes.util.find_library`` answers from the linker's cache (Linux
    without ``LD_LIBRARY_PATH`` only; elsewhere it is left as it is)."""
    listing = None
    if sys.platform == "linux" and not os.environ.get("LD_LIBRARY_PATH"):
        listing = _linker_cache()
    if listing is None:
        yield
        return
    real = ctypes.util.find_library
    cached, importer = finder(listing), threading.get_ident()

    def find_library(name: str) -> str | None:
        # the cache answers the importing thread only: any other gets the real lookup
        return cached(name) if threading.get_ident() == importer else real(name)

    ctypes.util.find_library = find_library
    try:
        yield
    finally:
        ctypes.util.find_library = real


def load() -> None:
    """Import WeasyPrint (once per process)."""
    if "weasyprint" in sys.modules:
        return
    with lookups_from_the_linker_cache():
        import weasyprint  # noqa: F401
