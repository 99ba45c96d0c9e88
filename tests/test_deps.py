"""scripts.deps: the project modules a module imports, read with ast, and their hash."""
import os

import pytest

from scripts.lib.planning.codehash import closure, closure_hash


def tree(root, files: dict) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.fixture
def project(tmp_path):
    tree(tmp_path, {
        "scripts/__init__.py": "",
        "scripts/a.py": "import os\nfrom scripts.b import f\n\ndef g():\n    from scripts import c  # lazy\n",
        "scripts/b.py": "from . import d\nimport torch\n",
        "scripts/c.py": "",
        "scripts/d.py": "from scripts.sub.e import x\n",
        "scripts/sub/__init__.py": "",
        "scripts/sub/e.py": "x = 1\n",
        "scripts/lonely.py": "import json\n",
    })
    return tmp_path


def names(paths, root):
    return [p.relative_to(root).as_posix() for p in paths]


def test_closure_follows_every_project_import_without_importing(project):
    assert names(closure("scripts.a", project), project) == [
        "scripts/__init__.py", "scripts/a.py", "scripts/b.py", "scripts/c.py", "scripts/d.py",
        "scripts/sub/__init__.py", "scripts/sub/e.py"]  # lazy, relative and package imports; no torch
    assert names(closure("scripts.lonely", project), project) == ["scripts/__init__.py", "scripts/lonely.py"]


def test_hash_follows_contents_not_modification_times(project):
    before = closure_hash("scripts.a", project)
    os.utime(project / "scripts/c.py", (0, 0))
    assert closure_hash("scripts.a", project) == before
    (project / "scripts/sub/e.py").write_text("x = 2\n")  # two imports away
    assert closure_hash("scripts.a", project) != before
    assert closure_hash("scripts.lonely", project) == closure_hash("scripts.lonely", project)


def test_an_import_of_a_missing_project_module_is_named(project):
    tree(project, {"scripts/broken.py": "\n\nfrom scripts.nowhere import y\n"})
    with pytest.raises(ModuleNotFoundError, match=r"broken.py:3: imports scripts.nowhere"):
        closure("scripts.broken", project)
    with pytest.raises(ModuleNotFoundError, match="scripts.absent"):
        closure("scripts.absent", project)
