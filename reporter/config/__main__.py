"""``python -m reporter.config [--write docs/CONFIGURATION.md]``: print the key reference
generated from the key table, or replace it in the document."""

import sys
from pathlib import Path

from reporter.config.keys import reference, write

if sys.argv[1:2] == ["--write"] and len(sys.argv) == 3:
    write(Path(sys.argv[2]))
else:
    sys.stdout.write(reference() + "\n")
