"""Stage program: see scripts.lib.report.compare."""
import sys

from scripts.lib.report.compare import main

if __name__ == "__main__":
    sys.exit(main())
