"""The benchmark scripts run end to end (their timings are printed, never asserted)."""
from scripts.benchmarks import deployment


def test_deployment_benchmark_prints_every_figure(capsys):
    deployment.main(["--rounds", "1", "--warmup", "0", "--min-run-time", "0.01", "--threads", "1"])
    out = capsys.readouterr().out
    assert "MACs ratio 0.26" in out  # 50 % of channels, round_to 8: ~0.27 of the MACs left
    for runtime in ("pytorch", "onnxruntime"):
        for batch in (1, 64):
            assert any(line.split()[:2] == [runtime, str(batch)] for line in out.splitlines())
    assert "sparse_fp32:" in out and "sparse_fp16:" in out and "end to end, batch 1" in out


def test_plan_speed_benchmark_plans_a_generated_matrix(capsys):
    from scripts.benchmarks import plan_speed
    rows = plan_speed.generated_experiments(20)
    assert len({r["name"] for r in rows}) == 20
    assert {r["strategy"] for r in rows} == set(plan_speed.STRATEGIES)  # every strategy, both schedules
    assert {r["schedule"] for r in rows} == set(plan_speed.SCHEDULES)
    plan_speed.main(["--experiments", "3", "--repeat", "1"])
    out = capsys.readouterr().out
    assert "3 experiments:" in out and "quick preset:" in out
