"""Stage program: see scripts.lib.pruning.prune."""
from scripts.lib.pruning.prune import main

if __name__ == "__main__":
    main()
