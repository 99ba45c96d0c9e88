"""Stage program: see scripts.lib.models.network."""
from scripts.lib.models.network import main

if __name__ == "__main__":
    main()
