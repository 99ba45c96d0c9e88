"""Stage program: see scripts.lib.report.crosscheck."""
from scripts.lib.report.crosscheck import main

if __name__ == "__main__":
    main()
