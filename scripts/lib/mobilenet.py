"""Facts about torchvision's MobileNetV2 that the workflow needs while it plans,
without importing torch (every `snakemake -n` and every cluster job reads them).

tests/test_model_engine.py keeps them equal to what torchvision builds.
"""
from __future__ import annotations

# The file behind MobileNet_V2_Weights.DEFAULT.url (torchvision's ImageNet weights).
IMAGENET_WEIGHTS_FILE = "mobilenet_v2-7ebf99e0.pth"
IMAGENET_CLASSES = 1000  # the stock head's outputs
FIRST_CONV = "features.0.0"  # the 32-filter stem convolution drawn in the kernel grids
CLASSIFIER = "classifier.1"  # the linear layer replaced by a num_classes head

# (expansion t, blocks n) of each stage, as in torchvision's inverted_residual_setting.
_STAGES = ((1, 1), (6, 2), (6, 3), (6, 4), (6, 3), (6, 3), (6, 1))


def module_names() -> frozenset[str]:
    """The names of model.named_modules() (the root is ""), whatever the number of classes."""
    names = {"", "features", "classifier", "classifier.0", "classifier.1"}  # classifier: dropout, linear

    def conv_bn_act(prefix: str) -> None:  # Conv2dNormActivation: conv, batch norm, ReLU6
        names.update({prefix, f"{prefix}.0", f"{prefix}.1", f"{prefix}.2"})

    conv_bn_act("features.0")
    blocks = [t for t, n in _STAGES for _ in range(n)]
    for i, t in enumerate(blocks, start=1):  # InvertedResidual: [expand,] depthwise, project conv, its BN
        block = f"features.{i}.conv"
        names.update({f"features.{i}", block})
        activated = 2 if t != 1 else 1
        for j in range(activated):
            conv_bn_act(f"{block}.{j}")
        names.update({f"{block}.{activated}", f"{block}.{activated + 1}"})
    conv_bn_act(f"features.{len(blocks) + 1}")  # the last 1x1 conv to 1280 channels
    return frozenset(names)
