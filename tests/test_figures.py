"""Figures: the pure parts, and every registry figure drawn from hand-made results."""
from __future__ import annotations

import json

import torch

from fake_results import results_rows
from scripts.lib.report.figures import draw, pareto_front
from scripts.lib.models.network import build_model, save_checkpoint
from scripts.lib.planning.registry import FIGURES


def test_pareto_front_keeps_exactly_the_undominated_points():
    points = [(0.0, 94.0), (0.5, 93.0), (0.9, 83.0), (0.9, 51.0), (0.5, 90.0), (0.95, 10.0)]
    assert pareto_front(points, maximise_x=True) == [0, 1, 2, 5]
    # smaller x is better (file size): only the most accurate of equal sizes, and smaller files
    assert pareto_front([(8.0, 94.0), (4.0, 93.0), (4.0, 80.0), (9.0, 95.0)], maximise_x=False) == [0, 1, 3]


def test_every_registry_figure_draws_from_its_declared_inputs(tmp_path):
    rows = results_rows(tmp_path / "metrics")
    results = tmp_path / "results.json"
    results.write_text(json.dumps(rows))
    history = tmp_path / "h.json"
    history.write_text(json.dumps({"steps": [
        {"step": k, "val_accuracy": 0.9 - 0.1 * k, "val_accuracy_pruned": 0.8 - 0.1 * k, "sparsity": 0.3 * k}
        for k in (1, 2, 3)]}))
    ckpts = []
    for name in ("a", "b"):
        model = build_model(10)
        with torch.no_grad():
            model.features[0][0].weight[:4] = 0  # pruned filters
        ckpts.append(tmp_path / f"{name}.pt")
        save_checkpoint(model, ckpts[-1], {"num_classes": 10, "name": name})
    for name, figure in FIGURES.items():
        outs = [tmp_path / name / f"{n}.png" for n in ("a", "b")] if figure.inputs == "checkpoints" \
            else [tmp_path / f"{name}.png"]
        labels = ["It"] if figure.inputs == "histories" else ["A", "B"]
        draw(name, outs, results=results, histories=[history], labels=labels, ckpts=ckpts)
        assert all(o.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for o in outs), name
