"""``python -m detstream``: the same as the ``detstream`` command."""

import sys

from detstream.stream.cli import main

if __name__ == "__main__":
    sys.exit(main())
