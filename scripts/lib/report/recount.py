"""Every accuracy of the results table recounted from the per-image predictions.

The evaluate job writes, per model, which test images it gets right (predictions/<model>.json:
`correct`, PyTorch fp32; `correct_int8`, ONNX Runtime int8; one '1' or '0' per test image,
in test-set order) beside the accuracies of its metrics file. Counting the ones gives the
accuracies again, and from them every number derived from an accuracy:

- accuracy and accuracy_int8 (RECOUNTED), and test_images (the strings' length);
- accuracy_ci, the Wilson interval of the fp32 count;
- fp16_accuracy_change, the fp16 export's accuracy less the recounted fp32 one;
- for a replicated experiment, accuracy_seeds (each seed's model: <name>_seed<k>), their
  mean and sample standard deviation.

A metrics file or results.json edited by hand then disagrees with its model's predictions.
The flip-TTA and fp16-export accuracies have no per-image record (evaluation writes none),
so they are taken as stated.

Torch-free: JSON in, numbers out.
"""
from __future__ import annotations

import statistics
from pathlib import Path

from scripts.lib.files import read_json
from scripts.lib.planning.matrix import replica_name
from scripts.lib.report.stats import wilson_interval

# metric -> the predictions field it is the share of ones of
RECOUNTED = {"accuracy": "correct", "accuracy_int8": "correct_int8"}


class PredictionsError(ValueError):
    """A predictions file is not what the evaluate job writes."""


def read_predictions(paths) -> dict[str, dict]:
    """Each model's predictions, by model name (the file's stem, which its `name` must be);
    all of them over the same test images (test_labels_sha256)."""
    out, labels = {}, {}
    for path in map(Path, paths):
        record = read_json(path)
        if not isinstance(record, dict) or record.get("name") != path.stem:
            raise PredictionsError(f"{path}: not the predictions of model {path.stem!r} "
                                   f"(its name is {record.get('name') if isinstance(record, dict) else None!r})")
        if path.stem in out:
            raise PredictionsError(f"{path}: a second predictions file of model {path.stem!r}")
        if not isinstance(record.get("correct"), str):
            raise PredictionsError(f"{path}: no 'correct' (per-image correctness of the fp32 model)")
        for field in RECOUNTED.values():  # 'correct' first
            flags = record.get(field)
            if flags is not None and (not isinstance(flags, str) or not flags or set(flags) - {"0", "1"}
                                      or len(flags) != len(record["correct"])):
                raise PredictionsError(f"{path}: {field!r} must be one '0' or '1' per test image, "
                                       f"as many as 'correct' has")
        labels[path.stem] = record.get("test_labels_sha256")
        out[path.stem] = record
    if len(set(labels.values())) > 1:
        raise PredictionsError(f"the predictions are over different test images (test_labels_sha256): {labels}")
    return out


def share(flags: str) -> float:
    """The share of ones, computed as the evaluation computes an accuracy (right / images)."""
    return flags.count("1") / len(flags)


def recount_row(row: dict, predictions: dict[str, dict]) -> dict:
    """The row's accuracy numbers recounted; raises KeyError naming a missing predictions file."""
    name = row["name"]
    if name not in predictions:
        raise KeyError(f"{name}: no predictions file (predictions/{name}.json)")
    record = predictions[name]
    unrecountable = [field for key, field in RECOUNTED.items() if row.get(key) is not None and record.get(field) is None]
    if unrecountable:  # a tabled accuracy whose per-image results are missing is not checked: say so
        raise KeyError(f"{name}: its predictions file has no {unrecountable} to recount the table's accuracy from")
    got = {key: share(record[field]) for key, field in RECOUNTED.items() if record.get(field) is not None}
    n = len(record["correct"])
    got["test_images"] = n
    got["accuracy_ci"] = list(wilson_interval(record["correct"].count("1"), n))
    if row.get("accuracy_fp16_export") is not None:
        got["fp16_accuracy_change"] = row["accuracy_fp16_export"] - got["accuracy"]
    if "seeds" in row:
        names = [name] + [replica_name(name, k) for k in row["seeds"][1:]]
        missing = [m for m in names if m not in predictions]
        if missing:
            raise KeyError(f"{name}: no predictions file of its seed replica(s) {missing}")
        seeds = [share(predictions[m]["correct"]) for m in names]
        got.update({"accuracy_seeds": seeds, "seeds_run": len(seeds), "accuracy_mean": statistics.fmean(seeds),
                    "accuracy_std": statistics.stdev(seeds)})
    return got


def recount(rows: list[dict], predictions: dict[str, dict]) -> tuple[list[dict], list[str], list[str]]:
    """The rows with every accuracy number recounted (what the paper must show), the
    mismatches with results.json (model, key, recounted, stated) and a report line per model."""
    expected, problems, report = [], [], []
    for row in rows:
        try:
            got = recount_row(row, predictions)
        except KeyError as e:
            problems.append(e.args[0])
            expected.append(row)
            continue
        wrong = [f"{row['name']}: {key} is {value!r} recounted from the predictions, {row.get(key)!r} in results.json"
                 for key, value in got.items() if row.get(key) != value]
        problems += wrong
        expected.append({**row, **got})
        record = predictions[row["name"]]
        int8 = f", int8 {record['correct_int8'].count('1')}" if record.get("correct_int8") else ""
        seeds = f", {got['seeds_run']} seeds" if "seeds_run" in got else ""
        report.append(f"{row['name']}: {record['correct'].count('1')} of {got['test_images']} test images right "
                      f"(fp32{int8}){seeds}: " + ("MISMATCH" if wrong else "ok"))
    return expected, problems, report


def check_metrics(rows: list[dict], metrics: dict[str, dict]) -> tuple[list[str], list[str]]:
    """Each row of results.json against its model's metrics file (the evaluate job's): every
    number the two share must be equal. (problems, a report line per model)."""
    problems, report = [], []
    for row in rows:
        m = metrics.get(row["name"])
        if m is None:
            problems.append(f"{row['name']}: no metrics file (metrics/{row['name']}.json)")
            continue
        wrong = [f"{row['name']}: {key} is {value!r} in its metrics file, {row[key]!r} in results.json"
                 for key, value in m.items() if key in row and row[key] != value]
        problems += wrong
        report.append(f"{row['name']}: {sum(key in row for key in m)} numbers as in its metrics file: "
                      + ("MISMATCH" if wrong else "ok"))
    return problems, report
