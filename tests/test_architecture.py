"""The code's shape: thin stage programs above a library grouped by subject, imports only downward.

Read with ast (scripts.lib.planning.codehash), nothing imported."""
from pathlib import Path

import pytest

from scripts.lib import REPO
from scripts.lib.planning.codehash import closure, imported_modules

PROGRAMS = sorted(p.stem for p in (REPO / "scripts").glob("*.py") if p.stem != "__init__")
# The library's groups, lowest first: a module may import its own group, a lower one, or the
# root modules every group shares (scripts.lib, files, mobilenet).
GROUPS = ["planning", "data", "models", "pruning", "measure", "report"]
ROOT_MODULES = {"scripts", "scripts.lib", "scripts.lib.files", "scripts.lib.mobilenet"}
MAX_MODULE_LINES = 400
MAX_PROGRAM_LINES = 80


def library_modules() -> list[str]:
    return sorted(".".join(p.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
                  for p in (REPO / "scripts" / "lib").rglob("*.py"))


def group(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 3 or (len(parts) == 3 and parts[2] in GROUPS) else None


def test_the_programs_are_the_stages_the_workflow_runs():
    assert {"data", "finetune", "prune", "evaluate", "timing", "results", "figures", "paper", "crosscheck",
            "publish", "provenance"} <= set(PROGRAMS)


@pytest.mark.parametrize("program", PROGRAMS)
def test_no_stage_program_imports_another(program):
    imported = {f.relative_to(REPO).as_posix() for f in closure(f"scripts.{program}")}
    others = {f"scripts/{p}.py" for p in PROGRAMS if p != program}
    assert not imported & others, f"scripts.{program} imports the stage program(s) {sorted(imported & others)}"


def test_the_library_imports_no_program_and_only_downward():
    wrong = []
    for module in library_modules():
        for target in imported_modules(module):
            if target.removeprefix("scripts.") in PROGRAMS:
                wrong.append(f"{module} imports the program {target}")
            elif target not in ROOT_MODULES and group(module) and group(target) \
                    and GROUPS.index(group(target)) > GROUPS.index(group(module)):
                wrong.append(f"{module} ({group(module)}) imports {target} ({group(target)}), a higher group")
            elif target not in ROOT_MODULES and not group(target):
                wrong.append(f"{module} imports {target}, which belongs to no group")
    assert not wrong, "\n".join(wrong)


def test_modules_are_small_and_programs_thin():
    sizes = {p.relative_to(REPO).as_posix(): len(p.read_text().splitlines())
             for p in (REPO / "scripts").rglob("*.py")}
    too_big = {f: n for f, n in sizes.items() if n > MAX_MODULE_LINES}
    fat_programs = {f"scripts/{p}.py": sizes[f"scripts/{p}.py"] for p in PROGRAMS
                    if sizes[f"scripts/{p}.py"] > MAX_PROGRAM_LINES}
    assert not too_big, f"modules over {MAX_MODULE_LINES} lines: {too_big}"
    assert not fat_programs, f"stage programs over {MAX_PROGRAM_LINES} lines: {fat_programs}"


def test_the_walk_sees_an_import_of_a_program(tmp_path):
    """The walk above can fail: a program importing another is found."""
    (tmp_path / "scripts" / "lib").mkdir(parents=True)
    for name, text in {"scripts/__init__.py": "", "scripts/lib/__init__.py": "",
                       "scripts/a.py": "from scripts.b import main\n", "scripts/b.py": "def main(): pass\n"}.items():
        (tmp_path / name).write_text(text)
    assert Path(tmp_path / "scripts/b.py") in closure("scripts.a", tmp_path)
