"""The locks: requirements.lock and requirements-dev.lock pin every package, dependencies
included, with sha256 hashes, agree with the human-edited requirements files they are
compiled from, are what environment.yml installs and what the running venv holds."""
from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, distribution, distributions
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
LOCKS = {"requirements.txt": "requirements.lock", "requirements-dev.txt": "requirements-dev.lock"}
PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")
# python -m venv installs pip itself; nothing depends on it, so no lock pins it.
BOOTSTRAP = {"pip"}


def norm(name: str) -> str:
    """A project name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(name: str) -> dict[str, str]:
    """The pins of a human-edited requirements file, -r includes followed; each must be exact."""
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            pins.update(requirements(line[3:].strip()))
            continue
        m = PIN.fullmatch(line)
        assert m, f"{name}: {line!r} is not an exact pin (name==version)"
        pins[norm(m[1])] = m[2]
    return pins


def entries(lock: str) -> dict[str, tuple[str, list[str]]]:
    """A lock's entries: name -> (version, its --hash options); comments and '# via' dropped."""
    out = {}
    text = (ROOT / lock).read_text().replace("\\\n", " ")  # one logical line per entry
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        first, *options = line.split()
        m = PIN.fullmatch(first)
        assert m, f"{lock}: {first!r} is not an exact pin (name==version)"
        assert norm(m[1]) not in out, f"{lock}: {m[1]} pinned twice"
        out[norm(m[1])] = (m[2], options)
    return out


def versions(lock: str) -> dict[str, str]:
    return {name: version for name, (version, _) in entries(lock).items()}


def test_every_pin_of_the_requirements_files_is_in_its_lock_at_the_same_version():
    for source, lock in LOCKS.items():
        pins, locked = requirements(source), versions(lock)
        wrong = {n: (v, locked.get(n, "missing")) for n, v in pins.items() if locked.get(n) != v}
        assert not wrong, f"{lock} disagrees with {source} (pin, lock): {wrong}; regenerate it"


def test_the_dev_lock_holds_the_runtime_lock_at_the_same_versions():
    runtime, dev = versions("requirements.lock"), versions("requirements-dev.lock")
    wrong = {n: (v, dev.get(n, "missing")) for n, v in runtime.items() if dev.get(n) != v}
    assert not wrong, f"requirements-dev.lock differs from requirements.lock (runtime, dev): {wrong}"


def test_every_lock_entry_is_hash_pinned_and_the_header_says_how_to_regenerate_it():
    for source, lock in LOCKS.items():
        locked = entries(lock)
        assert len(locked) > len(requirements(source)), f"{lock} lacks the transitive packages"
        for name, (_, options) in locked.items():
            assert options and all(HASH.fullmatch(o) for o in options), \
                f"{lock}: {name} needs --hash=sha256:... options and only those, got {options}"
        header = []
        for line in (ROOT / lock).read_text().splitlines():
            if not line.startswith("#"):
                break
            header.append(line)
        command = re.search(r"^#\s+(pip-compile .*)$", "\n".join(header), re.MULTILINE)
        assert command, f"{lock}: the header must give the pip-compile command that regenerates it"
        assert {"--generate-hashes", "--allow-unsafe", f"--output-file={lock}", source} <= set(command[1].split())


def test_environment_yml_installs_the_runtime_lock():
    """environment.yml names the lock rather than copying its pins, so the two cannot drift."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    (pip,) = [d["pip"] for d in deps if isinstance(d, dict)]
    assert "pip" in deps and pip == ["--require-hashes", "-r requirements.lock"], \
        f"environment.yml's pip section must install the lock, nothing else: {pip}"
    (python,) = [d for d in deps if isinstance(d, str) and d.startswith("python")]
    compiled = re.search(r"pip-compile with Python (\S+)", (ROOT / "requirements.lock").read_text())
    assert compiled, "requirements.lock's header must say which Python compiled it"
    assert python == f"python={compiled[1]}", \
        f"environment.yml asks for {python}, requirements.lock was compiled for Python {compiled[1]}"


def test_the_running_environment_holds_nothing_the_dev_lock_does_not_pin():
    try:
        distribution("torch")
    except PackageNotFoundError:
        pytest.skip("not run inside the project venv (torch is not installed), so there is "
                    "no installed environment to compare with requirements-dev.lock")
    locked = versions("requirements-dev.lock")
    installed = {norm(d.metadata["Name"]): d.version for d in distributions()}
    stray = {f"{n}=={v}": locked.get(n, "not in the lock") for n, v in sorted(installed.items())
             if n not in BOOTSTRAP and locked.get(n) != v}
    assert not stray, (f"installed but not pinned so by requirements-dev.lock (installed: lock): {stray}; "
                       "rebuild the venv with pip install --require-hashes -r requirements-dev.lock")
