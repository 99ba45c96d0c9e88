"""The release archive's packing and checking, on small files (the tiny workflow run re-evaluates real
models: tests/test_workflow.py)."""
import gzip
import hashlib
import io
import json
import tarfile

import pytest

from scripts.lib.measure.release import MANIFEST, ReleasedModel, ReleaseError, checkpoint_identity, pack, unpack

LABELS = "ab" * 32


@pytest.fixture
def models(tmp_path):
    out = []
    for i, name in enumerate(["baseline", "pruned"]):
        files = {}
        for key in ("checkpoint", "onnx", "onnx_int8"):
            files[key] = tmp_path / f"{name}.{key}"
            files[key].write_bytes(bytes([i]) * (100 + len(key)))
        predictions = tmp_path / f"{name}.predictions.json"
        predictions.write_text(json.dumps({"name": name, "test_labels_sha256": LABELS, "correct": "10"}))
        out.append(ReleasedModel(name, str(files["checkpoint"]), str(files["onnx"]), str(files["onnx_int8"]),
                                 str(predictions)))
    return out


def pack_to(path, models):
    rows = [{"name": m.name, "label": m.name.title(), "test_images": 2, "accuracy": 0.5, "accuracy_int8": 0.5}
            for m in models]
    provenance = {"commit": "c" * 40, "dirty": False, "config_sha256": "d" * 64}
    data = {"source": "synthetic", "origin": "generated", "content_sha256": None}
    return pack(models, rows, provenance, data, {"engine": {}}, path, "study-models")


def rewrite(archive, out, change):
    """A copy of `archive` with `change(name, data) -> data | None` applied to each member (None drops it)."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for info in src.getmembers():
            data = change(info.name, src.extractfile(info).read())
            if data is not None:
                info.size = len(data)
                dst.addfile(info, io.BytesIO(data))


def test_packing_twice_gives_the_same_bytes_and_every_file_unpacks_as_its_manifest_says(models, tmp_path):
    record = pack_to(tmp_path / "a.tar.gz", models)
    pack_to(tmp_path / "b.tar.gz", models)
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    assert gzip.open(tmp_path / "a.tar.gz").read()  # a plain gzip stream
    unpacked, folder = unpack(tmp_path / "a.tar.gz", tmp_path / "out")
    assert unpacked == record and folder.name == "study-models"
    assert [m["name"] for m in unpacked["models"]] == ["baseline", "pruned"]
    assert unpacked["data"]["test_labels_sha256"] == LABELS
    for m, entry in zip(models, unpacked["models"]):
        ckpt = folder / entry["files"]["checkpoint"]["path"]
        assert ckpt.read_bytes() == open(m.checkpoint, "rb").read()
        assert entry["files"]["checkpoint"]["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()


def test_a_damaged_member_fails_on_its_checksum(models, tmp_path):
    pack_to(tmp_path / "a.tar.gz", models)
    rewrite(tmp_path / "a.tar.gz", tmp_path / "bad.tar.gz",
            lambda name, data: data[:-1] + b"x" if name.endswith("pruned.int8.onnx") else data)
    with pytest.raises(ReleaseError, match=r"exports/pruned.int8.onnx of model 'pruned' does not match its sha256"):
        unpack(tmp_path / "bad.tar.gz", tmp_path / "out")


def test_a_missing_member_or_manifest_is_named(models, tmp_path):
    pack_to(tmp_path / "a.tar.gz", models)
    rewrite(tmp_path / "a.tar.gz", tmp_path / "short.tar.gz",
            lambda name, data: None if name.endswith("baseline.pt") else data)
    with pytest.raises(ReleaseError, match=r"models/baseline.pt of model 'baseline' is missing"):
        unpack(tmp_path / "short.tar.gz", tmp_path / "out1")
    rewrite(tmp_path / "a.tar.gz", tmp_path / "none.tar.gz", lambda name, data: None if MANIFEST in name else data)
    with pytest.raises(ReleaseError, match=rf"0 {MANIFEST} files, a release has one"):
        unpack(tmp_path / "none.tar.gz", tmp_path / "out2")


def test_what_is_not_a_release_says_so(models, tmp_path):
    with pytest.raises(ReleaseError, match=r"no release archive at .*snakemake --cores 2 release"):
        unpack(tmp_path / "absent.tar.gz", tmp_path / "out")
    (tmp_path / "text.tar.gz").write_text("not an archive")
    with pytest.raises(ReleaseError, match="not a readable tar.gz"):
        unpack(tmp_path / "text.tar.gz", tmp_path / "out")
    pack_to(tmp_path / "a.tar.gz", models)
    rewrite(tmp_path / "a.tar.gz", tmp_path / "other.tar.gz", lambda name, data: data.replace(
        b"mobilenetv2-pruning-release/1", b"something-else/9") if MANIFEST in name else data)
    with pytest.raises(ReleaseError, match="format 'something-else/9'"):
        unpack(tmp_path / "other.tar.gz", tmp_path / "out3")


def test_packing_refuses_models_evaluated_on_different_test_sets(models, tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"test_labels_sha256": "ff" * 32}))
    models[1] = ReleasedModel(models[1].name, models[1].checkpoint, models[1].onnx, models[1].onnx_int8, str(other))
    with pytest.raises(ReleaseError, match="different test sets"):
        pack_to(tmp_path / "a.tar.gz", models)
    assert not (tmp_path / "a.tar.gz").exists()


def test_each_released_checkpoint_is_named_the_published_one_or_not(models, tmp_path):
    pack_to(tmp_path / "r.tar.gz", models)
    record, _ = unpack(tmp_path / "r.tar.gz", tmp_path / "out")
    released = record["models"][0]
    digest = hashlib.sha256(open(models[0].checkpoint, "rb").read()).hexdigest()
    assert released["files"]["checkpoint"]["sha256"] == digest
    assert checkpoint_identity({"ckpt_sha256": digest}, released) == (True, "the published checkpoint")
    same, line = checkpoint_identity({"ckpt_sha256": "e" * 64}, released)
    assert not same and line == f"NOT the published checkpoint (sha256 {digest[:12]}, published {'e' * 12})"
    same, line = checkpoint_identity({}, released)
    assert not same and "records no sha256" in line
