"""Stage program: see scripts.lib.report.publish."""
import sys

from scripts.lib.report.publish import main

if __name__ == "__main__":
    sys.exit(main())
