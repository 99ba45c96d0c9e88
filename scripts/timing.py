"""Stage program: see scripts.lib.measure.timing."""
from scripts.lib.measure.timing import main

if __name__ == "__main__":
    main()
