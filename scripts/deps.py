"""The project code a job runs and its hash (scripts.lib.planning.codehash): the files of each
module's import closure and the hash the workflow and provenance record.

    python -m scripts.deps scripts.prune scripts.evaluate
"""
import argparse

from scripts.lib import REPO as ROOT
from scripts.lib.planning.codehash import closure, files_hash


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("modules", nargs="+", help="e.g. scripts.prune")
    args = p.parse_args(argv)
    for module in args.modules:
        files = closure(module)
        print(f"{module} {files_hash(files)}")
        for f in files:
            print(f"  {f.relative_to(ROOT).as_posix()}")



if __name__ == "__main__":
    main()
