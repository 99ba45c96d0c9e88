"""Stage program: see scripts.lib.planning.codehash."""
from scripts.lib.planning.codehash import main

if __name__ == "__main__":
    main()
