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


NESTED = '''\
class K:
    from scripts import m1
    def f(self):
        if x:
            from scripts import m2
        else:
            import scripts.m3
try:
    from scripts import m4
except ImportError:
    from scripts import m5
else:
    from scripts import m6
finally:
    from scripts import m7
with open("f") as f:
    for i in y:
        from scripts import m8
    else:
        while z:
            from scripts import m9
match v:
    case 1:
        from scripts import m10
async def h():
    async with a:
        from scripts import m11
x = [__import__("scripts.not_an_import_statement")]
'''


def test_imports_are_found_in_every_kind_of_block(tmp_path):
    """The scan visits statement blocks only (imports are statements), not every node: an
    import in any nested block is still found."""
    modules = [f"m{i}" for i in range(1, 12)]
    tree(tmp_path, {"scripts/__init__.py": "", "scripts/nested.py": NESTED,
                    **{f"scripts/{m}.py": "" for m in modules}})
    assert names(closure("scripts.nested", tmp_path), tmp_path) == sorted(
        ["scripts/__init__.py", "scripts/nested.py", *(f"scripts/{m}.py" for m in modules)])
