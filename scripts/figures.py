"""Stage program: see scripts.lib.report.figures."""
from scripts.lib.report.figures import main

if __name__ == "__main__":
    main()
