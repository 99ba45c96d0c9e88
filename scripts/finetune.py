"""Stage program: see scripts.lib.models.baseline."""
from scripts.lib.models.baseline import main

if __name__ == "__main__":
    main()
