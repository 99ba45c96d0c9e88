"""The paper's figure captions, one per figure of the registry (FIGURES in
scripts/lib/planning/registry.py), each saying what scripts/lib/report/figures.py draws.

They live with the report code, not in the registry: the registry is in every stage's code
hash, so a caption's wording there would retrain the whole study."""
from __future__ import annotations

from scripts.lib.planning.registry import FIGURES

FIGURE_CAPTIONS = {
    "macs": "Accuracy against the MACs of one image: the baseline (black star) and every model of this study, "
            "one colour per family (circles; random-ranking controls as crosses; masked models sit at the "
            "baseline's MACs), and published reference points (open grey markers at the baseline's MACs, quoted "
            "from their sources, not measured here; grey horizontal lines: accuracies reported for CIFAR-stem "
            "MobileNetV2, whose MACs differ). Error bars: Wilson 95 % intervals.",
    "curves": "Accuracy along the target, one curve per strategy and schedule (experiments that differ only in "
              "their target): against the measured share of prunable weights zeroed for masking (left), against "
              "the MACs of one image for channel removal (right). The dashed line is the baseline; error bars "
              "are Wilson 95 % intervals.",
    "training": "The baseline's training: accuracy on the training batches (augmented, as trained) and on the "
                "held-out validation images after each epoch; the marker is the kept epoch.",
    "pareto": "Accuracy against the share of prunable weights zeroed or removed (left) and against the gzip "
              "checkpoint size (right), one marker and colour per model; in each panel the dashed line joins the "
              "models that no other model beats on both of its axes. Error bars: Wilson 95 % intervals of the "
              "test accuracy.",
    "leaderboard": "All models ranked by top-1 test accuracy, with Wilson 95 % intervals; where an experiment "
                   "ran with several seeds, a dot per seed.",
    "evolution": "Iterative experiments: validation accuracy right after each pruning step (x) and after its "
                 "fine-tuning (o), left; share of the prunable weights zeroed or removed after each step, right.",
    "latency_macs": "Latency of one batch against the MACs of one image, per model, one panel per batch size, "
                    "on all the timing job's threads (the panel's title), in PyTorch eager (circles), ONNX "
                    "Runtime (squares) and ONNX Runtime int8 (triangles), all timed in one job. The dotted lines "
                    "run through the baseline with latency proportional to MACs, the speed-up that removing "
                    "arithmetic allows; masked models sit at the baseline's MACs.",
    "kernels": "The filters of the first convolution of every model, |w| of each filter's R, G and B kernels side "
               "by side, on one colour scale for all models; pruned weights are black, and channel-removed models "
               "show only the filters they kept. Each panel's title gives the model, its number of filters and "
               "its share of zero weights.",
}

if set(FIGURE_CAPTIONS) != set(FIGURES):
    raise ValueError(f"figure captions {sorted(FIGURE_CAPTIONS)} do not match the registry's figures {sorted(FIGURES)}")


def figure_caption(name: str) -> str:
    """The caption of the registry's figure `name`."""
    return FIGURE_CAPTIONS[name]
