"""Stage program: see scripts.lib.measure.evaluation."""
from scripts.lib.measure.evaluation import main

if __name__ == "__main__":
    main()
