"""Which project code a job runs, and a content hash of it.

The closure of a module is the module and every project module (`scripts.*`) it
imports, directly or through others, at the top or inside a function, with
their packages' __init__.py. It is read with `ast`: nothing is imported, so the
workflow can compute it while it plans. The hash is sha256 over the closure's
files (relative path and bytes, in path order): contents, not modification
times, so a fresh clone of the same code matches results made elsewhere.

The workflow passes `code_hash(module)` as a param of every rule that runs
project code; Snakemake reruns a job whose params changed. Provenance records
the hashes, so a reader can tell which code produced the numbers:

    python -m scripts.deps scripts.prune scripts.evaluate   # hash and files of each closure
"""
from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path

from scripts.lib import REPO

ROOT = REPO
PACKAGE = "scripts"


def module_file(module: str, root: Path = ROOT) -> Path | None:
    """The file of a project module (a package's __init__.py), or None if there is none."""
    base = Path(root).joinpath(*module.split("."))
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _is_project(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


def _import_statements(body: list[ast.stmt]):
    """The import statements in `body` and in every block nested in it (function and class
    bodies, if/try/with/loop branches). Imports are statements, so expressions are not visited:
    ast.walk over every node took about 0.1 s of each planning (and of each cluster job)."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        for field in ("body", "orelse", "finalbody"):
            yield from _import_statements(getattr(node, field, ()))
        for block in (*getattr(node, "handlers", ()), *getattr(node, "cases", ())):
            yield from _import_statements(block.body)


@functools.lru_cache(maxsize=None)  # each file is parsed once per planning, however many closures hold it
def imported_modules(module: str, root: Path = ROOT) -> frozenset[str]:
    """The project modules that `module`'s file imports (not transitively)."""
    path = module_file(module, root)
    if path is None:
        raise ModuleNotFoundError(f"{module}: no {module.replace('.', '/')}.py or package under {root}")
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in _import_statements(ast.parse(path.read_bytes(), filename=str(path)).body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if _is_project(alias.name))
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:  # relative: from . import x, from ..a import b
            parent = package.split(".")[:len(package.split(".")) - node.level + 1]
            base = ".".join(parent + ([node.module] if node.module else []))
        else:
            base = node.module
        if not _is_project(base):
            continue
        if module_file(base, root) is None:
            raise ModuleNotFoundError(f"{path}:{node.lineno}: imports {base}, which has no file under {root}")
        found.add(base)
        # `from scripts import prune` names a module; `from scripts.common import log` a value.
        found.update(f"{base}.{a.name}" for a in node.names if module_file(f"{base}.{a.name}", root))
    for name in found:
        if module_file(name, root) is None:
            raise ModuleNotFoundError(f"{path}: imports {name}, which has no file under {root}")
    return frozenset(found)


def closure(module: str, root: Path = ROOT) -> list[Path]:
    """The files of `module` and of every project module it imports, transitively, sorted."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # its packages run first
        todo.extend(imported_modules(name, root))
    return sorted(module_file(name, root) for name in seen)


def files_hash(paths, root: Path = ROOT) -> str:
    """sha256 over the files' paths relative to `root` and their bytes, in the order given."""
    h = hashlib.sha256()
    for path in paths:
        data = Path(path).read_bytes()
        h.update(f"{Path(path).relative_to(root).as_posix()}\0{len(data)}\0".encode())
        h.update(data)
    return h.hexdigest()


def closure_hash(module: str, root: Path = ROOT) -> str:
    return files_hash(closure(module, root), root)


def code_label(module: str, root: Path = ROOT) -> str:
    """`<module>@<first 16 hex digits of its closure hash>`: the rules' `code` param and what
    provenance.json records per stage."""
    return f"{module}@{closure_hash(module, root)[:16]}"
