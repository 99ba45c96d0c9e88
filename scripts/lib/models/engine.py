"""The training engine: data resident on the device as uint8, batched augmentation.

No PIL and no DataLoader worker on the hot path: random crop (zero pad 4) and
horizontal flip run as tensor ops on a whole batch, so the job's cores all go to
the convolutions. On CUDA the data lives on the GPU and the forward pass runs in
bfloat16 autocast.

The model and its batches run in one memory format (config key engine.memory_format).
channels_last (NHWC) is what oneDNN's CPU convolutions and cuDNN's tensor cores
compute in natively: on this project's 2-core CPU, MobileNetV2's whole training step
ran 2.8x faster in it than in the default contiguous (NCHW) layout
(scripts/benchmarks/engine_speed.py). Every entry point (fit, evaluate, batch-norm
recalibration) puts the model into the data's format first, so a model rebuilt by
channel removal, whose new weights come back contiguous, is converted again.
"""
from __future__ import annotations

import argparse
import copy
import math
import time
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from scripts.lib.files import log, parse_json_arg
from scripts.lib.models.resume import ResumePoint, rng_state, set_rng_state

PAD = 4  # pixels of zero padding for the random crop
# The engine's memory formats by their config name (engine.memory_format).
MEMORY_FORMATS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}
# Learning-rate factor after the warm-up, from the share of those steps done (0 -> 1).
LR_SCHEDULES = {
    "cosine": lambda progress: 0.5 * (1 + math.cos(math.pi * progress)),
    "linear": lambda progress: 1 - progress,  # budgeted training (Li et al., ICLR 2020)
}


@dataclass(frozen=True)
class TrainHyp:
    epochs: int              # passes over the training split
    batch_size: int          # images per SGD step
    lr: float                # peak learning rate; cosine decay to 0 after warm-up
    momentum: float          # SGD momentum
    weight_decay: float      # L2 penalty, applied to every parameter
    nesterov: bool           # Nesterov momentum
    label_smoothing: float   # cross-entropy label smoothing
    warmup_epochs: float     # linear warm-up length, in epochs
    lr_schedule: str = "cosine"        # decay to 0 after the warm-up: "cosine" or "linear"
    decay_norm_and_bias: bool = True   # False: no weight decay on batch-norm weights and biases
    ema_decay: float = 0.0             # > 0: validate and keep an exponential moving average of the weights

    def __post_init__(self):
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {sorted(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")

    @classmethod
    def from_dict(cls, d: dict) -> "TrainHyp":
        names = {f.name for f in fields(cls)}
        if set(d) != names:
            raise ValueError(f"training settings: expected keys {sorted(names)}, got {sorted(d)}")
        return cls(**d)


@dataclass(frozen=True)
class Distillation:
    """Knowledge distillation from a teacher (the dense baseline): the loss is
    (1 - weight) * cross-entropy + weight * T^2 * KL(teacher || student) at temperature T."""
    weight: float
    temperature: float

    def __post_init__(self):
        if not 0 <= self.weight <= 1:
            raise ValueError(f"distillation weight must be in [0, 1], got {self.weight!r}")
        if self.temperature <= 0:
            raise ValueError(f"distillation temperature must be > 0, got {self.temperature!r}")

    def loss(self, logits: torch.Tensor, teacher_logits: torch.Tensor, hard_loss: torch.Tensor) -> torch.Tensor:
        t = self.temperature
        soft = F.kl_div(F.log_softmax(logits / t, 1), F.log_softmax(teacher_logits.float() / t, 1),
                        reduction="batchmean", log_target=True) * t * t
        return (1 - self.weight) * hard_loss + self.weight * soft


def memory_format(name: str) -> torch.memory_format:
    """The torch memory format of a config name (engine.memory_format)."""
    try:
        return MEMORY_FORMATS[name]
    except KeyError:
        raise ValueError(f"memory format must be one of {sorted(MEMORY_FORMATS)}, got {name!r}") from None


def to_memory_format(model: nn.Module, fmt: torch.memory_format) -> nn.Module:
    """Put every 4-d parameter and buffer of `model` in `fmt`, in place: the same Parameter
    objects (an optimiser holding them goes on), their data replaced where it is re-laid."""
    return model.to(memory_format=fmt)


class DeviceData:
    """One split as uint8 images and labels on `device`, served in normalised batches in
    `memory_format` (the format the model computes in: see the module's docstring)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, mean, std, device: torch.device,
                 memory_format: torch.memory_format = torch.contiguous_format):
        self.images = images.to(device)
        self.labels = labels.to(device)
        self.device = device
        self.memory_format = memory_format
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1) * 255

    def __len__(self) -> int:
        return len(self.labels)

    def normalise(self, x: torch.Tensor) -> torch.Tensor:
        return ((x.float() - self.mean) / self.std).contiguous(memory_format=self.memory_format)

    def augment(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Random crop with zero padding PAD, then random horizontal flip, per image."""
        b, c, h, w = x.shape
        padded = F.pad(x, (PAD, PAD, PAD, PAD))
        dy = torch.randint(0, 2 * PAD + 1, (b,), generator=gen).to(x.device)
        dx = torch.randint(0, 2 * PAD + 1, (b,), generator=gen).to(x.device)
        flip = (torch.rand(b, generator=gen) < 0.5).to(x.device)
        rows = dy[:, None] + torch.arange(h, device=x.device)[None]
        cols = dx[:, None] + torch.arange(w, device=x.device)[None]
        cols = torch.where(flip[:, None], cols.flip(1), cols)
        return padded[torch.arange(b, device=x.device)[:, None, None, None],
                      torch.arange(c, device=x.device)[None, :, None, None],
                      rows[:, None, :, None], cols[:, None, None, :]]

    def batches(self, batch_size: int, gen: torch.Generator | None = None, augment: bool = False):
        """Yield (normalised float images, labels); shuffled and augmented when `gen` is given."""
        n = len(self)
        order = torch.randperm(n, generator=gen).to(self.device) if gen is not None else None
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size] if order is not None else slice(start, start + batch_size)
            x, y = self.images[idx], self.labels[idx]
            if augment:
                x = self.augment(x, gen)
            yield self.normalise(x), y


def duration(seconds: float) -> str:
    """Seconds as a reader wants them in a progress line: '45 s', '12 min', '2 h 05 min'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def _autocast(device: torch.device):
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


def evaluate(model: nn.Module, data: DeviceData, batch_size: int, flip_tta: bool = False) -> dict:
    """Top-1 accuracy and mean cross-entropy over a whole split. With `flip_tta`, the
    logits are the mean of the image's and its horizontal mirror's (test-time augmentation)."""
    # Outside inference mode: tensors it made would refuse the in-place updates of training.
    to_memory_format(model, data.memory_format).eval()
    correct, loss_sum = 0, 0.0
    with torch.inference_mode():
        for x, y in data.batches(batch_size):
            with _autocast(data.device):
                logits = model(x)
                if flip_tta:
                    logits = (logits.float() + model(x.flip(3)).float()) / 2
            loss_sum += F.cross_entropy(logits.float(), y, reduction="sum").item()
            correct += (logits.argmax(1) == y).sum().item()
    return {"accuracy": correct / len(data), "loss": loss_sum / len(data)}


def parameter_groups(model: nn.Module, hyp: TrainHyp) -> list[dict]:
    """All parameters with the configured weight decay; with decay_norm_and_bias False,
    batch-norm weights and all biases (the 1-d tensors) get none."""
    if hyp.decay_norm_and_bias:
        return [{"params": list(model.parameters()), "weight_decay": hyp.weight_decay}]
    params = list(model.parameters())
    return [{"params": [p for p in params if p.ndim > 1], "weight_decay": hyp.weight_decay},
            {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0}]


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """Multiplier of the peak learning rate at `step` (0-based) of `total`: linear warm-up
    over `warmup` steps, then `schedule` down to 0 at the last step."""
    if step < warmup:
        return (step + 1) / warmup
    return LR_SCHEDULES[schedule](min(1.0, (step - warmup) / max(1, total - warmup)))


def make_optimizer(model: nn.Module, hyp: TrainHyp, steps_per_epoch: int):
    opt = torch.optim.SGD(parameter_groups(model, hyp), lr=hyp.lr, momentum=hyp.momentum,
                          nesterov=hyp.nesterov and hyp.momentum > 0)
    total = hyp.epochs * steps_per_epoch
    warmup = round(hyp.warmup_epochs * steps_per_epoch)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, total, warmup, hyp.lr_schedule))


def train_one_epoch(model, data: DeviceData, opt, sched, hyp: TrainHyp, gen: torch.Generator,
                    ema: "WeightAverage | None" = None, teacher: nn.Module | None = None,
                    distill: Distillation | None = None, before_step=None) -> dict:
    """One pass over `data`. `before_step(step)` runs before each SGD step with the number of
    steps taken so far in this fit (a pruning schedule hooks in there)."""
    model.train()
    seen, correct, loss_sum = 0, 0, 0.0
    for x, y in data.batches(hyp.batch_size, gen, augment=True):
        if before_step is not None:
            before_step(sched.last_epoch)
        with _autocast(data.device):
            logits = model(x)
            loss = F.cross_entropy(logits.float(), y, label_smoothing=hyp.label_smoothing)
            if teacher is not None:
                with torch.no_grad():
                    teacher_logits = teacher(x)
                loss = distill.loss(logits.float(), teacher_logits, loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if ema is not None:
            ema.update(model)
        seen += len(y)
        loss_sum += loss.item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
    return {"loss": loss_sum / seen, "accuracy": correct / seen}


def detach_pruned_weights(model: nn.Module) -> None:
    """torch.nn.utils.prune keeps each pruned `weight` as a computed tensor (orig * mask),
    which deepcopy refuses; its forward hook recomputes it anyway, so a detached copy
    in its place changes nothing but lets the model be copied."""
    for m in model.modules():
        for hook in m._forward_pre_hooks.values():
            name = getattr(hook, "_tensor_name", None)
            if name is not None and hasattr(m, f"{name}_orig"):
                setattr(m, name, getattr(m, name).detach())


class WeightAverage:
    """An exponential moving average of the model (torch.optim.swa_utils), batch-norm
    statistics included. Pruning masks are buffers too: they are copied, never averaged,
    so that the average keeps exactly the pruned positions at zero."""

    def __init__(self, model: nn.Module, decay: float):
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        detach_pruned_weights(model)
        self.average = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)

    @property
    def module(self) -> nn.Module:
        return self.average.module

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.average.update_parameters(model)
        averaged = dict(self.module.named_buffers())
        for name, buffer in model.named_buffers():
            if name.endswith("_mask"):
                averaged[name].copy_(buffer)

    def state_dict(self) -> dict:
        return self.average.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.average.load_state_dict(state)


def fit(model: nn.Module, train: DeviceData, val: DeviceData, hyp: TrainHyp, seed: int,
        eval_batch_size: int, tag: str = "", resume: ResumePoint | None = None,
        teacher: nn.Module | None = None, distill: Distillation | None = None, before_step=None,
        keep_from_epoch: int = 1) -> list[dict]:
    """Train for hyp.epochs; leave the model at its best validation epoch (among epochs
    `keep_from_epoch` and later); return the history.

    With hyp.ema_decay > 0, the moving average of the weights is what is validated and kept.
    With `teacher` and `distill`, the loss distils the teacher's logits (teacher in eval mode).
    `before_step(step)` runs before every SGD step (see train_one_epoch).
    With `resume`, the state after every epoch is saved there, and a killed run started
    again continues after its last finished epoch, exactly as if it had not stopped.
    """
    if (teacher is None) != (distill is None):
        raise ValueError("distillation needs both a teacher and its settings")
    # Before the optimiser exists, so that its momentum buffers take the weights' format.
    to_memory_format(model, train.memory_format)
    if teacher is not None:
        to_memory_format(teacher, train.memory_format).eval()
    gen = torch.Generator().manual_seed(seed)
    steps = math.ceil(len(train) / hyp.batch_size)
    opt, sched = make_optimizer(model, hyp, steps)
    ema = WeightAverage(model, hyp.ema_decay) if hyp.ema_decay else None
    judged = ema.module if ema else model  # the weights that are validated and kept
    history, best_acc, best_state, start = [], -1.0, None, 1
    saved = resume.load() if resume else None
    if saved:
        model.load_state_dict(saved["model"])
        if ema:
            ema.load_state_dict(saved["ema"])
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        gen.set_state(saved["gen"])
        set_rng_state(saved["rng"])
        history, best_acc, best_state = saved["history"], saved["best_acc"], saved["best_state"]
        start = len(history) + 1
    for epoch in range(start, hyp.epochs + 1):
        t0 = time.perf_counter()
        tr = train_one_epoch(model, train, opt, sched, hyp, gen, ema, teacher, distill, before_step)
        va = evaluate(judged, val, eval_batch_size)
        seconds = time.perf_counter() - t0
        history.append({"epoch": epoch, "train_loss": tr["loss"], "train_accuracy": tr["accuracy"],
                        "val_loss": va["loss"], "val_accuracy": va["accuracy"], "seconds": seconds})
        mean = sum(h["seconds"] for h in history) / len(history)
        log.info("%sepoch %d/%d  train loss %.4f acc %.4f  val loss %.4f acc %.4f  %.1fs (%.0f img/s), "
                 "about %s left in this training", tag, epoch, hyp.epochs, tr["loss"], tr["accuracy"], va["loss"],
                 va["accuracy"], seconds, len(train) / seconds, duration(mean * (hyp.epochs - epoch)))
        if epoch >= keep_from_epoch and va["accuracy"] > best_acc:
            best_acc, best_state = va["accuracy"], copy.deepcopy(judged.state_dict())
        if resume:
            resume.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                         "gen": gen.get_state(), "rng": rng_state(), "history": history, "best_acc": best_acc,
                         "best_state": best_state, **({"ema": ema.state_dict()} if ema else {})},
                        f"{tag}epoch {epoch}/{hyp.epochs}")
    model.load_state_dict(best_state)
    return history


@torch.no_grad()
def recalibrate_batch_norm(model: nn.Module, data: DeviceData, batches: int, batch_size: int,
                           gen: torch.Generator) -> None:
    """Re-estimate every batch-norm layer's running statistics on `batches` training batches
    (no augmentation, no gradient): after pruning, the statistics of the dense network no
    longer describe the activations. Only running statistics change."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain average over the batches seen
    was_training = model.training
    to_memory_format(model, data.memory_format).train()
    for i, (x, _) in enumerate(data.batches(batch_size, gen)):
        if i == batches:
            break
        with _autocast(data.device):
            model(x)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    model.train(was_training)


def device_splits(dataset: dict, mean, std, device: torch.device,
                  fmt: torch.memory_format = torch.contiguous_format) -> dict[str, DeviceData]:
    """The cached dataset's train / val / test splits as DeviceData on `device`, served in `fmt`."""
    tr, va = dataset["train_index"], dataset["val_index"]
    images, labels = dataset["train_images"], dataset["train_labels"]
    return {
        "train": DeviceData(images[tr], labels[tr], mean, std, device, fmt),
        "val": DeviceData(images[va], labels[va], mean, std, device, fmt),
        "test": DeviceData(dataset["test_images"], dataset["test_labels"], mean, std, device, fmt),
    }


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line arguments every training stage (fine-tune, prune) takes."""
    parser.add_argument("--data", required=True, help="dataset.pt from the data stage")
    parser.add_argument("--hyp", required=True, type=parse_json_arg, help="training settings (JSON)")
    parser.add_argument("--mean", required=True, type=float, nargs=3, help="normalisation mean (RGB)")
    parser.add_argument("--std", required=True, type=float, nargs=3, help="normalisation std (RGB)")
    parser.add_argument("--seed", required=True, type=int)
    parser.add_argument("--eval-batch-size", required=True, type=int)
    parser.add_argument("--memory-format", required=True, choices=sorted(MEMORY_FORMATS),
                        help="the layout the model and its batches compute in (config key engine.memory_format)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (capped at the machine's cores)")
    parser.add_argument("--ckpt", required=True, help="output checkpoint")
    parser.add_argument("--history", required=True, help="output JSON history")
