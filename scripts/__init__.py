"""The code the Snakemake rules run: one module per stage, plus shared helpers.

Each stage module is a command-line program (`python -m scripts.<stage> --help`)
and a library the tests import directly.
"""
