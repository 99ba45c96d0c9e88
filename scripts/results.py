"""Stage program: see scripts.lib.report.results."""
from scripts.lib.report.results import main

if __name__ == "__main__":
    main()
