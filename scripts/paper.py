"""Stage program: see scripts.lib.report.paper."""
from scripts.lib.report.paper import main

if __name__ == "__main__":
    main()
