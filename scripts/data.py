"""Stage program: see scripts.lib.data.datasets."""
from scripts.lib.data.datasets import main

if __name__ == "__main__":
    main()
