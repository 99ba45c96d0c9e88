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
