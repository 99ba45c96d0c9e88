"""MobileNetV2 for CIFAR-10: building it, its initial weights, and checkpoints.

    python -m scripts.model fetch-imagenet --out resources/weights/mobilenet_v2-7ebf99e0.pth
"""
from __future__ import annotations

import pickle
import re
import tempfile
from pathlib import Path

import torch
from torch import nn
from torchvision.models import MobileNet_V2_Weights, mobilenet_v2

from scripts.lib.files import load_torch, save_torch
from scripts.lib.mobilenet import CLASSIFIER, IMAGENET_CLASSES

IMAGENET_WEIGHTS = MobileNet_V2_Weights.DEFAULT


class WeightsError(RuntimeError):
    """Initial weights could not be fetched or read."""


def fetch_imagenet_weights(out: str | Path) -> None:
    """Download torchvision's ImageNet MobileNetV2 state_dict, checking its hash prefix."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    url = IMAGENET_WEIGHTS.url
    m = re.search(r"-([a-f0-9]+)\.", Path(url).name)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        dst = Path(tmp, out.name)
        try:
            torch.hub.download_url_to_file(url, str(dst), hash_prefix=m.group(1) if m else None, progress=False)
        except (OSError, RuntimeError) as e:  # URLError is an OSError; RuntimeError = bad hash
            raise WeightsError(
                f"could not download the ImageNet weights (MobileNet_V2_Weights.DEFAULT) from {url}: {e}\n"
                "Supply them yourself, then run snakemake again:\n"
                f"  - download {url} on a machine with network access and copy it to {out}, or\n"
                "  - set model.weights to the path of that file, or\n"
                "  - set model.weights: none to train from random initialisation (say so in the paper), or\n"
                "  - run the offline quick preset: snakemake --cores 2 --configfile workflow/presets/quick.yaml"
            ) from e
        dst.replace(out)


def build_model(num_classes: int, weights_path: str | Path | None = None, width_mult: float = 1.0) -> nn.Module:
    """torchvision MobileNetV2 with a `num_classes` head, optionally from a state_dict file.

    An ImageNet (1000-class) state_dict is loaded before the head is replaced, so
    every layer but the new classifier starts from it. `width_mult` scales every layer's
    channels as torchvision does (rounded to multiples of 8): the small dense controls.
    """
    model = mobilenet_v2(weights=None, width_mult=width_mult)
    state = None
    if weights_path is not None:
        try:
            state = torch.load(weights_path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError) as e:
            raise WeightsError(f"{weights_path}: not a readable state_dict file ({type(e).__name__}: {e})") from e
        if isinstance(state, dict) and "state_dict" in state:  # one of our own checkpoints
            state = state["state_dict"]
        head = state.get(f"{CLASSIFIER}.weight") if isinstance(state, dict) else None
        if head is None:
            raise WeightsError(f"{weights_path}: no {CLASSIFIER}.weight; not a MobileNetV2 state_dict")
        if head.shape[0] == IMAGENET_CLASSES:
            model.load_state_dict(state)
            state = None
    # NOTE: the stock 1000-way ImageNet head is replaced by a num_classes head.
    parent, _, child = CLASSIFIER.rpartition(".")
    setattr(model.get_submodule(parent), child, nn.Linear(model.get_submodule(CLASSIFIER).in_features, num_classes))
    if state is not None:
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise WeightsError(f"{weights_path}: does not fit MobileNetV2 with {num_classes} classes: {e}") from e
    return model


def architecture_spec(model: nn.Module) -> dict[str, list[int]]:
    """The width of every layer that channel pruning can change, as plain ints:
    conv -> [in, out, groups], BatchNorm -> [features], linear -> [in, out]."""
    spec = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            spec[name] = [m.in_channels, m.out_channels, m.groups]
        elif isinstance(m, nn.BatchNorm2d):
            spec[name] = [m.num_features]
        elif isinstance(m, nn.Linear):
            spec[name] = [m.in_features, m.out_features]
    return spec


def apply_architecture(model: nn.Module, spec: dict[str, list[int]]) -> nn.Module:
    """Resize the layers of a stock model to `spec` (fresh weights, to be loaded after).

    Kernel size, stride, padding and bias come from the stock layer; only widths change.
    """
    for name, widths in spec.items():
        old = model.get_submodule(name)
        if isinstance(old, nn.Conv2d):
            new = nn.Conv2d(widths[0], widths[1], old.kernel_size, old.stride, old.padding, old.dilation,
                            groups=widths[2], bias=old.bias is not None)
        elif isinstance(old, nn.BatchNorm2d):
            new = nn.BatchNorm2d(widths[0], old.eps, old.momentum)
        elif isinstance(old, nn.Linear):
            new = nn.Linear(widths[0], widths[1], bias=old.bias is not None)
        else:
            raise ValueError(f"architecture spec names {name!r}, a {type(old).__name__}, not a conv/BN/linear layer")
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, new)
    return model


def model_from_state(meta: dict, state_dict: dict) -> nn.Module:
    """The model a checkpoint describes: stock MobileNetV2 (at its width multiplier, for a small
    dense net trained so), resized if it was channel-pruned."""
    model = build_model(meta["num_classes"], width_mult=meta.get("width_mult", 1.0))
    if "architecture" in meta:
        apply_architecture(model, meta["architecture"])
    model.load_state_dict(state_dict)
    return model


def save_checkpoint(model: nn.Module, path, meta: dict, architecture: bool = False) -> None:
    """Plain tensors plus a JSON-like meta dict; loadable with weights_only=True.

    architecture=True records the layer widths (for physically pruned models).
    """
    # contiguous: the file is the same whatever memory format the model was trained in
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    if architecture:
        meta = {**meta, "architecture": architecture_spec(model)}
    save_torch({"state_dict": state, "meta": meta}, path)


def load_checkpoint(path) -> tuple[nn.Module, dict]:
    try:
        ckpt = load_torch(path)
    except pickle.UnpicklingError as e:  # weights_only refused a Python object: never run it
        culprit = next((line.strip() for line in str(e).splitlines() if "GLOBAL" in line.upper()), "")
        raise WeightsError(f"{path}: cannot load checkpoint: refused, it holds Python objects beyond plain "
                           f"tensors and containers (a pickle that could run code). {culprit}") from e
    except (OSError, RuntimeError, EOFError, ValueError) as e:  # missing, truncated or corrupt
        raise WeightsError(f"{path}: cannot load checkpoint ({type(e).__name__}: {e})") from e
    try:
        return model_from_state(ckpt["meta"], ckpt["state_dict"]), ckpt["meta"]
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise WeightsError(f"{path}: not a checkpoint of this project ({type(e).__name__}: {e})") from e
