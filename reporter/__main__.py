"""``python -m reporter``: the same command line as ``reporter``."""

from reporter.cli import main

if __name__ == "__main__":
    main(prog_name="reporter")
