"""The deployment benchmark measures what it reports (its timings are never asserted)."""
from scripts.benchmarks import deployment


def test_deployment_benchmark_measures_every_figure_it_reports():
    m = deployment.measure(None, channel_ratio=0.5, sparsity=0.9, threads=1, rounds=2, warmup=0, min_run_time=0.01)
    # 50 % of the channels of every coupled group, rounded to multiples of 8: about a quarter of the MACs
    assert 0.2 < m["macs_ratio"] < 0.3 and 0.2 < m["params_ratio"] < 0.3
    assert set(m["latency"]) == {(rt, b, model) for rt in ("pytorch", "onnxruntime") for b in (1, 64)
                                 for model in ("dense", "pruned")}
    assert all(ms > 0 for ms in m["latency"].values())
    # 90 % zeros stored sparsely: well under the dense file even with random-init weights
    assert m["sizes"]["sparse_fp16"] < m["sizes"]["sparse_fp32"] < 0.2


def test_plan_speed_benchmark_plans_a_generated_matrix(capsys):
    from scripts.benchmarks import plan_speed
    rows = plan_speed.generated_experiments(20)
    assert len({r["name"] for r in rows}) == 20
    assert {r["strategy"] for r in rows} == set(plan_speed.STRATEGIES)  # every strategy, both schedules
    assert {r["schedule"] for r in rows} == set(plan_speed.SCHEDULES)
    plan_speed.main(["--experiments", "3", "--repeat", "1"])
    out = capsys.readouterr().out
    assert "3 experiments:" in out and "quick preset:" in out
