"""The data set: read a source once into a cached tensor file (the data stage, scripts/data.py).

The cache holds uint8 images (N, 3, H, W), int64 labels, the class names, a
stratified seeded train/validation split (as indices into the training set)
and the sha256 of the source, so training never decodes an image again.

    python -m scripts.data download-cifar10 --out resources/cifar-10-python.tar.gz
    python -m scripts.data prepare --source imagefolder --path data.tar.gz --out results/x/data/dataset.pt ...
"""
from __future__ import annotations

import hashlib
import math
import re
import tarfile
import tempfile
from pathlib import Path

import torch

from scripts.lib.data.mirror import (JPEG_MIRROR_COMMIT, JPEG_MIRROR_CONTENT_SHA256, JPEG_MIRROR_REPO,
                                      JPEG_MIRROR_URL)
from scripts.lib.files import load_torch, sha256_file

SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
_MEMBER = re.compile(r"(?:^|/)(train|test)/([^/]+)/([^/]+)$")


class DataError(RuntimeError):
    """The data source is missing, unreadable or not the shape the study expects."""




# --- sources -----------------------------------------------------------------

def download_cifar10(out: str | Path) -> None:
    """Fetch cifar-10-python.tar.gz with torchvision's own downloader and md5 check."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import download_url

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        try:
            download_url(CIFAR10.url, root=tmp, filename=out.name, md5=CIFAR10.tgz_md5)
        except (OSError, RuntimeError) as e:  # URLError is an OSError
            raise DataError(
                f"could not download CIFAR-10 from {CIFAR10.url}: {e}\n"
                "Supply the data yourself, then run snakemake again:\n"
                f"  - copy cifar-10-python.tar.gz to {out} (or set data.path to its location), or\n"
                "  - set data.source: imagefolder and data.path: <directory or .tar.gz with "
                "train/<class>/* and test/<class>/*>, or\n"
                "  - run the offline quick preset: snakemake --cores 2 --configfile workflow/presets/quick.yaml"
            ) from e
        Path(tmp, out.name).replace(out)


def download_jpeg_mirror(out: str | Path, url: str = JPEG_MIRROR_URL) -> None:
    """Fetch the pinned commit's archive of the JPEG mirror (checked later by its content)."""
    import urllib.request

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        part = Path(tmp, out.name)
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(part, "wb") as f:
                while chunk := response.read(1 << 20):
                    f.write(chunk)
        except OSError as e:  # URLError, HTTPError and socket timeouts are OSErrors
            raise DataError(
                f"could not download {JPEG_MIRROR_REPO} at commit {JPEG_MIRROR_COMMIT[:12]} from {url}: {e}\n"
                "Supply the data yourself, then run snakemake again:\n"
                f"  - save that archive (or any .tar.gz or folder of the repository at that commit) as {out}, "
                "or set data.path to it; its decoded images are checked, not its bytes, or\n"
                "  - set data.source: torchvision for the original binary CIFAR-10, or\n"
                "  - run the offline quick preset: snakemake --cores 2 --configfile workflow/presets/quick.yaml"
            ) from e
        part.replace(out)


def content_sha256(splits: dict, classes: list[str]) -> str:
    """sha256 of a data set's decoded content: class names, then per split (train, test) the uint8
    images (N, 3, H, W) and int64 labels, in the reader's order. Equal for any archive of the same
    images, whatever its compression or file order."""
    h = hashlib.sha256("\n".join(classes).encode())
    for split in SPLITS:
        images, labels = splits[split]
        h.update(images.contiguous().numpy().tobytes())
        h.update(labels.to(torch.int64).numpy().astype("<i8").tobytes())
    return h.hexdigest()


def read_cifar10_tarball(tarball: str | Path):
    """Read torchvision's cifar-10-python.tar.gz through torchvision.datasets.CIFAR10."""
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import check_integrity, extract_archive

    tarball = Path(tarball)
    if not tarball.is_file():
        raise DataError(f"{tarball}: no such file (expected torchvision's cifar-10-python.tar.gz)")
    if not check_integrity(str(tarball), CIFAR10.tgz_md5):
        raise DataError(f"{tarball}: md5 differs from torchvision's cifar-10-python.tar.gz; "
                        "for an ImageFolder archive set data.source: imagefolder")
    with tempfile.TemporaryDirectory() as tmp:
        extract_archive(str(tarball), tmp)
        splits = {}
        for split in SPLITS:
            ds = CIFAR10(tmp, train=(split == "train"), download=False)
            images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
            splits[split] = (images, torch.tensor(ds.targets, dtype=torch.int64))
        return splits, list(ds.classes)


def _iter_imagefolder_files(path: Path):
    """Yield (split, class, name, bytes) from a directory or a .tar.gz archive."""
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            m = _MEMBER.search(file.relative_to(path).as_posix())
            if file.is_file() and m and file.suffix.lower() in IMAGE_SUFFIXES:
                yield m.group(1), m.group(2), m.group(3), file.read_bytes()
        return
    try:
        with tarfile.open(path, "r:*") as tar:
            for member in tar:
                m = _MEMBER.search(member.name)
                if member.isfile() and m and member.name.lower().endswith(IMAGE_SUFFIXES):
                    yield m.group(1), m.group(2), m.group(3), tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"{path}: not a readable archive ({type(e).__name__}: {e})") from e


def read_imagefolder(path: str | Path):
    """Decode every image of an ImageFolder tree (train/<class>/*, test/<class>/*)."""
    # Here, not at the top: torchvision's import takes over a second, and every job that
    # loads the cached data set (synthetic or CIFAR-10 too) imports this module.
    from torchvision.io import ImageReadMode, decode_image

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or directory (expected an ImageFolder directory or .tar.gz)")
    files = {split: [] for split in SPLITS}
    for split, cls, name, blob in _iter_imagefolder_files(path):
        files[split].append((cls, name, blob))
    for split in SPLITS:
        if not files[split]:
            raise DataError(f"{path}: no images under {split}/<class>/ (ImageFolder layout expected)")
    classes = sorted({cls for cls, _, _ in files["train"]})
    test_classes = sorted({cls for cls, _, _ in files["test"]})
    if classes != test_classes:
        raise DataError(f"{path}: train classes {classes} differ from test classes {test_classes}")
    index = {c: i for i, c in enumerate(classes)}
    splits = {}
    for split in SPLITS:
        images, labels = [], []
        for cls, name, blob in sorted(files[split], key=lambda t: (t[0], t[1])):
            try:
                img = decode_image(torch.frombuffer(bytearray(blob), dtype=torch.uint8), mode=ImageReadMode.RGB)
            except RuntimeError as e:
                raise DataError(f"{path}: cannot decode {split}/{cls}/{name}: {e}") from e
            if images and img.shape != images[0].shape:
                raise DataError(f"{path}: {split}/{cls}/{name} is {tuple(img.shape)}, "
                                f"others are {tuple(images[0].shape)}")
            images.append(img)
            labels.append(index[cls])
        splits[split] = (torch.stack(images), torch.tensor(labels, dtype=torch.int64))
    return splits, classes


def make_synthetic(train_size: int, test_size: int, num_classes: int, image_size: int,
                   noise: float, seed: int):
    """Ten (num_classes) kinds of coloured, oriented gratings under pixel noise.

    Each class has its own orientation, spatial frequency and colour; phase,
    contrast and brightness vary per image. A small CNN learns it well above
    chance but not perfectly, so pruning damage shows in the accuracy.
    """
    g = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(image_size, dtype=torch.float32),
                            torch.arange(image_size, dtype=torch.float32), indexing="ij")
    classes = [f"class_{c}" for c in range(num_classes)]

    def render(n):
        labels = torch.arange(n) % num_classes
        labels = labels[torch.randperm(n, generator=g)]
        theta = math.pi * labels.float() / num_classes
        freq = 1.5 + (labels % 3).float()  # cycles per image
        hue = 2 * math.pi * labels.float() / num_classes
        colour = torch.stack([torch.cos(hue + k * 2 * math.pi / 3) for k in range(3)], 1) * 0.5 + 0.5
        phase = torch.rand(n, generator=g) * 2 * math.pi
        contrast = 40 + 40 * torch.rand(n, generator=g)
        brightness = 100 + 50 * torch.rand(n, generator=g)
        u = (xs[None] * torch.cos(theta)[:, None, None] + ys[None] * torch.sin(theta)[:, None, None])
        wave = torch.sin(2 * math.pi * freq[:, None, None] * u / image_size + phase[:, None, None])
        img = brightness[:, None, None, None] + contrast[:, None, None, None] * (
            (colour[:, :, None, None] - 0.5) * 2 * wave[:, None])
        img = img + noise * torch.randn(img.shape, generator=g)
        return img.round().clamp(0, 255).to(torch.uint8), labels.to(torch.int64)

    return {"train": render(train_size), "test": render(test_size)}, classes


# --- split and checks ----------------------------------------------------------

def stratified_split(labels: torch.Tensor, val_fraction: float, seed: int):
    """Seeded split holding out round(val_fraction * n_c) images of every class c."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    g = torch.Generator().manual_seed(seed)
    train_idx, val_idx = [], []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        n_val = max(1, round(val_fraction * len(idx)))
        if n_val >= len(idx):
            raise DataError(f"class {c} has {len(idx)} training images: too few to hold out "
                            f"{val_fraction:.0%} for validation")
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    return torch.sort(torch.cat(train_idx)).values, torch.sort(torch.cat(val_idx)).values


def check_shape(splits, classes, num_classes: int, image_size: int, source: str) -> None:
    if len(classes) != num_classes:
        raise DataError(f"{source}: found {len(classes)} classes {classes}, the config expects "
                        f"data.num_classes={num_classes}")
    for split, (images, labels) in splits.items():
        expected = (3, image_size, image_size)
        if tuple(images.shape[1:]) != expected:
            raise DataError(f"{source}: {split} images are {tuple(images.shape[1:])}, the config "
                            f"expects {expected} (data.image_size={image_size})")
        if images.dtype != torch.uint8 or len(images) != len(labels):
            raise DataError(f"{source}: {split} split is malformed")


# --- the stage -----------------------------------------------------------------

def prepare(source: str, path: str | None, val_fraction: float, num_classes: int,
            image_size: int, seed: int, synthetic: dict | None = None,
            expected_content: str = JPEG_MIRROR_CONTENT_SHA256) -> dict:
    """Read a source and return the dataset dictionary that `prepare` caches. The jpeg_mirror
    source must decode to `expected_content` (content_sha256)."""
    if source != "synthetic" and not path:
        raise DataError(f"data source {source!r} reads a file or folder: give its path (config key data.path)")
    if source == "torchvision":
        splits, classes = read_cifar10_tarball(path)
        origin, sha = str(path), sha256_file(path)
    elif source in ("imagefolder", "jpeg_mirror"):
        splits, classes = read_imagefolder(path)
        origin = str(path)
        sha = sha256_file(path) if Path(path).is_file() else "directory (not hashed)"
    elif source == "synthetic":
        synthetic = synthetic or {}
        splits, classes = make_synthetic(synthetic["train_size"], synthetic["test_size"], num_classes,
                                         image_size, synthetic["noise"], seed)
        origin, sha = f"synthetic(seed={seed}, {synthetic})", "generated"
    else:
        raise ValueError(f"unknown data source {source!r}")
    content = content_sha256(splits, classes)
    if source == "jpeg_mirror" and content != expected_content:
        raise DataError(f"{path}: its images and labels are not {JPEG_MIRROR_REPO} at commit "
                        f"{JPEG_MIRROR_COMMIT[:12]} (content sha256 {content}, expected {expected_content}); "
                        "for other image folders set data.source: imagefolder")
    check_shape(splits, classes, num_classes, image_size, origin)
    train_idx, val_idx = stratified_split(splits["train"][1], val_fraction, seed)
    return {
        "train_images": splits["train"][0], "train_labels": splits["train"][1],
        "test_images": splits["test"][0], "test_labels": splits["test"][1],
        "train_index": train_idx, "val_index": val_idx,
        "classes": classes, "source": source, "origin": origin, "source_sha256": sha, "content_sha256": content,
    }


def summary(data: dict) -> dict:
    """The small, human-readable facts about a cached dataset (for the paper)."""
    return {"source": data["source"], "origin": data["origin"], "sha256": data["source_sha256"],
            "content_sha256": data.get("content_sha256"),  # None in caches made before it existed
            "classes": data["classes"], "train": len(data["train_index"]), "val": len(data["val_index"]),
            "test": len(data["test_labels"]), "image_shape": list(data["train_images"].shape[1:])}


def load_dataset(path: str | Path) -> dict:
    return load_torch(path)
