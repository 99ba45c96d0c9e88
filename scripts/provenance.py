"""Stage program: see scripts.lib.measure.provenance."""
from scripts.lib.measure.provenance import main

if __name__ == "__main__":
    main()
