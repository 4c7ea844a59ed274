"""reporter: scheduled usage reports for AI gateway usage data.

Layers, each importing only those before it: the foundation modules (errors, money,
periods, fsutil) -> store -> report -> render -> deliver -> jobs -> service -> cli.
See docs/ARCHITECTURE.md.
"""

__version__ = "0.1.0"
