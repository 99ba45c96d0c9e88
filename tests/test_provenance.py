"""Provenance: the commit and its state, the weights' hash, the software versions."""
from __future__ import annotations

import hashlib
import subprocess

from scripts.lib.measure.provenance import SIMD_FLAGS, collect, git_state


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def test_git_state_names_the_commit_and_sees_uncommitted_changes(tmp_path):
    assert git_state(tmp_path) == {"commit": "unknown", "dirty": False}  # not a checkout
    git(tmp_path, "init", "-q")
    (tmp_path / "a.py").write_text("x = 1\n")
    git(tmp_path, "add", "a.py")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    assert git_state(tmp_path) == {"commit": head, "dirty": False}
    (tmp_path / "a.py").write_text("x = 2\n")
    assert git_state(tmp_path) == {"commit": head, "dirty": True}


def test_collect_hashes_the_weights_and_lists_the_versions(tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"weights")
    p = collect("c" * 64, {"scripts.prune": "h1"}, "imagenet", weights, repo=tmp_path)
    assert p["weights"] == {"setting": "imagenet", "file": str(weights),
                            "sha256": hashlib.sha256(b"weights").hexdigest()}
    assert p["versions"]["torch"].startswith("2.14.1") and p["versions"]["torch-pruning"] == "1.6.1"
    assert p["hardware"]["cores"] >= 1
    assert set(p["hardware"]["simd"]) <= set(SIMD_FLAGS)  # what decides kernel speed, int8 above all
    assert p["code"] == {"scripts.prune": "h1"} and p["commit"] == "unknown"  # tmp_path is no checkout
    assert collect("c" * 64, {})["weights"]["sha256"] is None
    # the memory format the numbers were computed in: the other one differs in the last bits
    assert collect("c" * 64, {}, engine={"memory_format": "channels_last"})["engine"] == {"memory_format": "channels_last"}
