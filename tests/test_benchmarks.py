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
