"""Each benchmark measures what it reports (its timings are never asserted). Those that run
models or Snakemake are marked slow: python -m pytest -m "not slow" leaves them out."""
import pytest
import torch

from scripts.benchmarks import deployment


@pytest.mark.slow  # runs the benchmark itself (models, training or Snakemake plans)
def test_deployment_benchmark_measures_every_figure_it_reports():
    m = deployment.measure(None, channel_ratio=0.5, sparsity=0.9, threads=1, rounds=2, warmup=0, min_run_time=0.01)
    # 50 % of the channels of every coupled group, rounded to multiples of 8: about a quarter of the MACs
    assert 0.2 < m["macs_ratio"] < 0.3 and 0.2 < m["params_ratio"] < 0.3
    assert set(m["latency"]) == {(rt, b, model) for rt in ("pytorch", "onnxruntime") for b in (1, 64)
                                 for model in ("dense", "pruned")}
    assert all(ms > 0 for ms in m["latency"].values())
    # 90 % zeros stored sparsely: well under the dense file even with random-init weights
    assert m["sizes"]["sparse_fp16"] < m["sizes"]["sparse_fp32"] < 0.2
    # like for like: the dense file gzipped shrinks a little, so each share of it is larger
    sizes = m["sizes"]
    assert sizes["dense_gzip_bytes"] < sizes["dense_bytes"]
    for key in ("sparse_fp32", "sparse_fp16"):
        assert sizes[f"{key}_vs_gzip"] == pytest.approx(sizes[key] * sizes["dense_bytes"] / sizes["dense_gzip_bytes"])


@pytest.mark.slow  # runs the benchmark itself (models, training or Snakemake plans)
def test_plan_speed_benchmark_plans_a_generated_matrix(capsys):
    from scripts.benchmarks import plan_speed
    rows = plan_speed.generated_experiments(20)
    assert len({r["name"] for r in rows}) == 20
    # every pruning strategy, every schedule; no dense control (it prunes nothing, sparsity 0)
    pruning = {n for n, s in plan_speed.STRATEGIES.items() if s.family != plan_speed.DENSE}
    assert {r["strategy"] for r in rows} == pruning
    assert {r["schedule"] for r in rows} == set(plan_speed.SCHEDULES)
    plan_speed.main(["--experiments", "3", "--repeat", "1"])
    out = capsys.readouterr().out
    assert "3 experiments:" in out and "quick preset:" in out
    assert "the job shape alone (3 x prune + evaluate" in out  # the floor planned beside them


@pytest.mark.slow  # runs the benchmark itself (models, training or Snakemake plans)
def test_recipe_screen_trains_each_candidate_and_names_the_winner(tmp_path, capsys):
    """Two candidates for one epoch on generated data: a JSON each (settings, history, test
    accuracy with and without flip test-time augmentation), a ranked summary, and the
    winner's full train settings as a --configfile overlay."""
    import json

    import yaml

    from scripts.benchmarks import recipe_screen
    from scripts.lib.data.datasets import prepare
    from scripts.lib.files import save_torch

    data = prepare("synthetic", None, 0.1, 10, 32, 0, synthetic={"train_size": 200, "test_size": 50, "noise": 30})
    save_torch(data, tmp_path / "ds.pt")
    out = tmp_path / "screen"
    recipe_screen.main(["--data", str(tmp_path / "ds.pt"), "--out", str(out), "--epochs", "1",
                        "--only", "base", "lr_0.05", "--parallel", "2"])
    results = {n: json.loads((out / f"{n}.json").read_text()) for n in ("base", "lr_0.05")}
    base = yaml.safe_load((recipe_screen.ROOT / "config.yaml").read_text())["train"]
    assert results["base"]["train"] == {**base, "epochs": 1}
    assert results["lr_0.05"]["train"] == {**base, "epochs": 1, "lr": 0.05}
    assert all(len(r["history"]) == 1 and 0 <= r["test_flip_tta"] <= 1 for r in results.values())
    winner = max(results.values(), key=lambda r: r["best_val"])["name"]
    assert yaml.safe_load((out / "winner.yaml").read_text()) == {"train": results[winner]["train"]}
    assert "| base |" in (out / "summary.md").read_text()
    with pytest.raises(SystemExit, match="unknown candidates"):
        recipe_screen.main(["--data", "x", "--out", str(out), "--only", "nope"])


@pytest.mark.slow  # runs the benchmark itself (models, training or Snakemake plans)
def test_batch_throughput_benchmark_times_every_batch_size(capsys):
    from scripts.benchmarks import batch_throughput

    rates = batch_throughput.measure([16, 32], images=64, rounds=2, threads=1)
    assert set(rates) == {16, 32} and all(len(r) == 2 and min(r) > 0 for r in rates.values())
    batch_throughput.main(["--batch-sizes", "16", "32", "--images", "64", "--rounds", "1", "--threads", "1"])
    out = capsys.readouterr().out
    assert "batch   16:" in out and "batch   32:" in out and "1.00x batch 16" in out


def test_timing_agreement_puts_two_runs_side_by_side(tmp_path, capsys):
    import json

    from fake_results import latency_file
    from scripts.benchmarks import timing_agreement

    first = latency_file()
    second = json.loads(json.dumps(first))
    for g in second["models"]["os_ch_50"]:
        g["latency_ms"] *= 1.1  # this model 10 % slower in the second run: its speed-ups 9.1 % lower
    (tmp_path / "a.json").write_text(json.dumps(first))
    (tmp_path / "b.json").write_text(json.dumps(second))
    rows = timing_agreement.agreement(first, second)
    assert all(r["spread"] == (pytest.approx(1 - 1 / 1.1) if r["key"][0] == "os_ch_50" else 0) for r in rows)
    timing_agreement.main([str(tmp_path / "a.json"), str(tmp_path / "b.json")])
    out = capsys.readouterr().out
    n = len(rows)
    assert f"max 9.1%; {n - 12} of {n} within 5%" in out  # 12 settings of os_ch_50 (3 runtimes x 2 x 2)


@pytest.mark.slow  # runs the benchmark itself (models, training or Snakemake plans)
def test_engine_speed_times_every_layout_and_precision_against_the_old_engine(capsys):
    """Every variant runs the engine's own training step; the printed ratios are to contiguous
    fp32 eager, whose own ratio is 1.00x."""
    from scripts.benchmarks import engine_speed

    device = torch.device("cpu")
    rates = engine_speed.measure(images=32, rounds=1, threads=1, compile_too=False)
    assert set(rates) == {v.key for v in engine_speed.variants(device, False)}
    assert {k[0] for k in rates} == {"contiguous", "channels_last"} and engine_speed.REFERENCE in rates
    assert ("contiguous", "bf16", False) in rates or not engine_speed.has_bf16(device)
    assert all(len(r) == 1 and r[0] > 0 for r in rates.values())
    engine_speed.main(["--images", "32", "--rounds", "1", "--threads", "1", "--no-compile"])
    out = capsys.readouterr().out
    assert "contiguous    fp32 eager" in out and "1.00x" in out and "channels_last fp32 eager" in out


@pytest.mark.slow  # runs the benchmark itself (models, training or Snakemake plans)
def test_layout_numerics_compares_each_layout_with_float64(capsys):
    """Every conv and linear weight's gradient in both layouts, close to the float64 one
    (a layout that mixed up the axes would be off by about 100 %)."""
    from scripts.benchmarks import layout_numerics

    out = layout_numerics.measure(size=8)
    assert set(out) == {"channels_last", "contiguous"}
    for r in out.values():
        assert len(r["grad_errors"]) == 53  # 52 convolutions and the classifier
        assert 0 <= r["loss_error"] < 1e-3 and max(r["grad_errors"].values()) < 0.5
    layout_numerics.main(["--batch-size", "8"])
    assert "contiguous    loss error" in capsys.readouterr().out
