"""The released models: one archive of the published models for a public deposit, and the check
that re-evaluates such an archive against the published accuracies (the release stage,
scripts/release.py).

The archive (tar.gz, the same bytes for the same files: sorted members, zeroed times and owners)
holds, per model of the paper's tables, its checkpoint, its ONNX export and its int8 ONNX model,
and MANIFEST.json: every file's sha256 and size, the accuracies the run measured (fp32 PyTorch
and ONNX Runtime int8), the evaluation settings, the test set's label hash, the data's content
hash and the commit. `verify` checks every checksum, then counts again, image by image, what
each checkpoint and each int8 model gets right on the test set.
"""
from __future__ import annotations

import gzip
import io
import json
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from scripts.lib.files import atomic_output, read_json, sha256_file

FORMAT = "mobilenetv2-pruning-release/1"
MANIFEST = "MANIFEST.json"
# What each model brings, by its key in the manifest: the folder and suffix it has in the archive.
FILES = {"checkpoint": ("models", ".pt"), "onnx": ("exports", ".onnx"), "onnx_int8": ("exports", ".int8.onnx")}
# The accuracies the re-evaluation recounts: fp32 from the checkpoint, int8 from its ONNX model.
ACCURACIES = ("accuracy", "accuracy_int8")
# The same weights on the same test set: identical on the run's CPU type and software; elsewhere
# other kernels sum in another order (and int8 may take other instructions), which flips only
# images at a decision boundary. More than 10 of the 10,000 is not that.
TOLERANCE = 0.001


class ReleaseError(ValueError):
    """An archive that is not a release, a file whose checksum differs, a test set that is not the run's."""


@dataclass(frozen=True)
class ReleasedModel:
    """One model's files as the pack step finds them in the results folder."""
    name: str
    checkpoint: str
    onnx: str
    onnx_int8: str
    predictions: str  # its per-image record (test set's label hash)


def member(name: str, key: str) -> str:
    folder, suffix = FILES[key]
    return f"{folder}/{name}{suffix}"


def manifest(models: list[ReleasedModel], rows: list[dict], provenance: dict, data_summary: dict,
             evaluate_job: dict) -> dict:
    """The manifest of `models`, their accuracies from the results table's `rows`."""
    by_name = {r["name"]: r for r in rows}
    labels = {read_json(m.predictions)["test_labels_sha256"] for m in models}
    if len(labels) != 1:
        raise ReleaseError(f"the models were evaluated on different test sets (test_labels_sha256 {sorted(labels)})")
    entries = []
    for m in models:
        if m.name not in by_name:
            raise ReleaseError(f"model {m.name!r} has no row in the results table")
        row = by_name[m.name]
        files = {key: {"path": member(m.name, key), "sha256": sha256_file(getattr(m, key)),
                       "bytes": Path(getattr(m, key)).stat().st_size} for key in FILES}
        entries.append({"name": m.name, "label": row["label"], "files": files, "test_images": row["test_images"],
                        **{k: row[k] for k in ACCURACIES}})
    return {"format": FORMAT, "commit": provenance["commit"], "dirty": provenance["dirty"],
            "config_sha256": provenance["config_sha256"],
            "data": {"source": data_summary["source"], "origin": data_summary["origin"],
                     "content_sha256": data_summary.get("content_sha256"), "test_labels_sha256": labels.pop()},
            "evaluate_job": evaluate_job, "models": entries}


def _add(tar: tarfile.TarFile, name: str, data: bytes | None = None, path: str | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data) if data is not None else Path(path).stat().st_size
    info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = 0, 0o644, 0, 0, "", ""
    if data is not None:
        tar.addfile(info, io.BytesIO(data))
    else:
        with open(path, "rb") as f:
            tar.addfile(info, f)


def pack(models: list[ReleasedModel], rows: list[dict], provenance: dict, data_summary: dict, evaluate_job: dict,
         out, root: str) -> dict:
    """Write the archive to `out` (whole or not at all), its members under the folder `root`;
    return its manifest."""
    if not models:
        raise ReleaseError("no models to release")
    record = manifest(models, rows, provenance, data_summary, evaluate_job)
    with atomic_output(out) as tmp:
        # filename "": gzip would record the temporary file's name (it holds the PID) in its header
        with open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz, \
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            _add(tar, f"{root}/{MANIFEST}", data=(json.dumps(record, indent=1) + "\n").encode())
            for m in sorted(models, key=lambda m: m.name):
                for key in FILES:
                    _add(tar, f"{root}/{member(m.name, key)}", path=getattr(m, key))
    return record


def unpack(archive, into: Path) -> tuple[dict, Path]:
    """Extract a release into `into`; return its manifest and folder, every file checked
    against the manifest's sha256."""
    archive = Path(archive)
    if not archive.is_file():
        raise ReleaseError(f"no release archive at {archive}: download the published one (README, \"Released "
                           f"models\") to that path, or pack one from a finished run with `snakemake --cores 2 release`")
    try:
        with tarfile.open(archive, "r:gz") as tar:
            # Extract first, then list: listing first reads the whole gzip stream, and extracting
            # after it decompresses it all again (a gzip stream cannot seek back).
            tar.extractall(into, filter="data")  # no links out, no absolute paths
            manifests = [n for n in tar.getnames() if Path(n).name == MANIFEST]
    except (tarfile.TarError, OSError, EOFError) as e:
        raise ReleaseError(f"{archive}: not a readable tar.gz ({e})") from None
    if len(manifests) != 1:
        raise ReleaseError(f"{archive}: {len(manifests)} {MANIFEST} files, a release has one")
    folder = (into / manifests[0]).parent
    record = json.loads((folder / MANIFEST).read_text())
    if record.get("format") != FORMAT:
        raise ReleaseError(f"{archive}: format {record.get('format')!r}, expected {FORMAT!r}")
    for m in record["models"]:
        for key, f in m["files"].items():
            path = folder / f["path"]
            if not path.is_file():
                raise ReleaseError(f"{archive}: {f['path']} of model {m['name']!r} is missing")
            if sha256_file(path) != f["sha256"]:
                raise ReleaseError(f"{archive}: {f['path']} of model {m['name']!r} does not match its sha256 in "
                                   f"the manifest (damaged or altered)")
    return record, folder


def checkpoint_identity(published: dict, released: dict) -> tuple[bool, str]:
    """Whether a released checkpoint is the published one: its sha256 (checked against the file by
    unpack) against the published row's `ckpt_sha256`. An archive packed from another run (a
    rung-5 rebuild, other hardware) holds other weights, whose accuracies may still agree."""
    got, want = released["files"]["checkpoint"]["sha256"], published.get("ckpt_sha256")
    if want is None:
        return False, "checkpoint not checked (the published row records no sha256)"
    if got == want:
        return True, "the published checkpoint"
    return False, f"NOT the published checkpoint (sha256 {got[:12]}, published {want[:12]})"


def judge(published: dict, measured: dict, tolerance: float) -> tuple[str, list[str]]:
    """'identical', 'within' or 'OUTSIDE' for one model's re-evaluated accuracies, and a line per accuracy."""
    verdicts, lines = [], []
    for key in ACCURACIES:
        diff = measured[key] - published[key]
        verdicts.append("identical" if diff == 0 else "within" if abs(diff) <= tolerance else "OUTSIDE")
        lines.append(f"{key} {measured[key] * 100:.2f} % (published {published[key] * 100:.2f} %, "
                     f"{diff * 100:+.2f} points)")
    worst = "OUTSIDE" if "OUTSIDE" in verdicts else "within" if "within" in verdicts else "identical"
    return worst, lines


def reevaluate(archive, dataset: dict, published_rows: list[dict], threads: int,
               tolerance: float = TOLERANCE) -> tuple[dict, list[str], int, int]:
    """Every released model's accuracies counted again on the test set of `dataset` (fp32 from its
    checkpoint in PyTorch, int8 from its ONNX model in ONNX Runtime, with the run's evaluation
    settings) against the published rows; (the archive's manifest, a report line per model, how many
    models moved by more than `tolerance`, how many checkpoints are the published ones)."""
    from scripts.lib.measure.evaluation import correct_images, tensor_sha256
    from scripts.lib.measure.quantize import onnx_correct
    from scripts.lib.models.engine import device_splits, memory_format
    from scripts.lib.models.network import load_checkpoint
    from scripts.lib.models.runtime import select_device

    published = {r["name"]: r for r in published_rows}
    with tempfile.TemporaryDirectory() as tmp:
        record, folder = unpack(archive, Path(tmp))
        engine = record["evaluate_job"]["engine"]
        device = select_device()
        test = device_splits(dataset, engine["mean"], engine["std"], device,
                             memory_format(engine["memory_format"]))["test"]
        labels = tensor_sha256(test.labels)
        if labels != record["data"]["test_labels_sha256"]:
            raise ReleaseError(f"the test set's labels (sha256 {labels[:12]}) are not those the models were "
                               f"evaluated on ({record['data']['test_labels_sha256'][:12]}): prepare the data of "
                               f"the release ({record['data']['source']}, content sha256 "
                               f"{record['data']['content_sha256']})")
        lines, outside, identical = [], 0, 0
        for m in record["models"]:
            if m["name"] not in published:
                raise ReleaseError(f"model {m['name']!r} of the release is not in the published results")
            model, _ = load_checkpoint(folder / m["files"]["checkpoint"]["path"])
            fp32 = correct_images(model.to(device), test, engine["eval_batch_size"])
            int8 = onnx_correct(str(folder / m["files"]["onnx_int8"]["path"]), test, engine["eval_batch_size"], threads)
            measured = {"accuracy": fp32.count("1") / len(test), "accuracy_int8": int8.count("1") / len(test)}
            verdict, detail = judge(published[m["name"]], measured, tolerance)
            outside += verdict == "OUTSIDE"
            same, identity = checkpoint_identity(published[m["name"]], m)
            identical += same
            lines.append(f"{m['name']}: {identity}; {'; '.join(detail)}: {verdict}")
    return record, lines, outside, identical
