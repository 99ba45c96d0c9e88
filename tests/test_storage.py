"""The sparse export: encodings chosen by size, exact round trips, real savings."""
import pytest
import torch
from torch import nn

from scripts.lib.measure.evaluation import gzip_size
from scripts.lib.models.network import build_model
from scripts.lib.pruning.masks import make_permanent, prunable_modules, prune_step
from scripts.lib.measure.storage import (decode_tensor, encode_tensor, pack, read_sparse_export, shuffle_bytes,
                             sparse_export_bytes, unpack, unshuffle_bytes, write_sparse_export)


def sparse_tensor(shape, density, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(shape, generator=g)
    return t * (torch.rand(shape, generator=g) < density)


@pytest.mark.parametrize("density, encoding", [(1.0, "dense"), (0.5, "bitmask"), (0.01, "csr")])
def test_encoding_is_the_smallest_and_exact(density, encoding):
    t = sparse_tensor((64, 32, 3, 3), density)
    entry = encode_tensor(t, torch.float32)
    assert entry["encoding"] == encoding
    assert torch.equal(decode_tensor(entry), t)


def test_hand_built_bitmask_and_csr():
    t = torch.tensor([[0.0, 1.5, 0.0], [0.0, 0.0, -2.0]])
    bitmask = encode_tensor(t.flatten(), torch.float32)  # 1-D: no CSR; 1 + 8 bytes beat 24 dense
    assert bitmask["encoding"] == "bitmask"
    assert bitmask["mask"].tolist() == [0b01000100]
    assert bitmask["values"].tolist() == [1.5, -2.0]
    entry = encode_tensor(torch.zeros(100, 100).index_put_((torch.tensor([3]), torch.tensor([7])),
                                                           torch.tensor(4.0)), torch.float32)
    assert entry["encoding"] == "csr"
    assert entry["values"].tolist() == [4.0] and entry["col"].tolist() == [7]
    assert entry["crow"].tolist() == [0] * 4 + [1] * 97


def test_non_float_tensors_stay_exact():
    t = torch.tensor(12345, dtype=torch.int64)
    back = decode_tensor(encode_tensor(t, torch.float16))
    assert back.item() == 12345 and back.dtype == torch.int64 and back.shape == ()


def test_pack_keeps_every_tensor_apart():
    state = {"a": sparse_tensor((8, 4), 0.3, seed=1), "steps": torch.tensor(7), "b": sparse_tensor((16,), 1.0),
             "c": sparse_tensor((100, 100), 0.01, seed=2), "empty": torch.zeros(0)}
    entries = {k: encode_tensor(v, torch.float32) for k, v in state.items()}
    assert {e["encoding"] for e in entries.values()} == {"bitmask", "list", "dense", "csr"}
    back = {k: decode_tensor(e) for k, e in unpack(pack(entries, torch.float32), torch.float32).items()}
    assert all(torch.equal(back[k], state[k]) for k in state)


def test_round_trip_of_a_pruned_model(tmp_path):
    torch.manual_seed(0)
    model = build_model(10)
    modules = [m for _, m in prunable_modules(model, ["Conv2d", "Linear"])]
    prune_step(modules, "l1_unstructured", 0.9)
    make_permanent(modules)
    state = model.state_dict()
    path = tmp_path / "m.sparse.gz"
    size32 = write_sparse_export(state, path, "float32", {"num_classes": 10})
    back, meta = read_sparse_export(path)
    assert meta == {"num_classes": 10}
    assert back.keys() == state.keys()
    assert all(torch.equal(back[k], state[k]) for k in state)
    # 90 % sparse: the fp32 export is far below the dense file, fp16 lower still
    dense_file = sum(v.numel() * v.element_size() for v in state.values())
    assert size32 < 0.15 * dense_file
    assert len(sparse_export_bytes(state, "float16")) < 0.6 * size32
    dense = tmp_path / "dense.pt"
    torch.save(state, dense)
    assert size32 < gzip_size(dense)


def test_float16_export_changes_values_by_rounding_only(tmp_path):
    layer = nn.Linear(50, 20)
    state = layer.state_dict()
    path = tmp_path / "h.gz"
    write_sparse_export(state, path, "float16")
    back, _ = read_sparse_export(path)
    assert back["weight"].dtype == torch.float32
    assert torch.equal(back["weight"], state["weight"].half().float())


def test_unknown_value_dtype_is_refused():
    with pytest.raises(ValueError, match="value_dtype must be one of"):
        sparse_export_bytes({}, "int8")


def test_byte_shuffle_round_trip():
    v = torch.tensor([1.0, -2.5, 3.25], dtype=torch.float32)
    planes = shuffle_bytes(v)
    assert planes.shape == (4, 3) and planes.dtype == torch.uint8
    assert planes[3].tolist() == [v[i:i + 1].view(torch.uint8)[3].item() for i in range(3)]  # sign/exponent bytes
    assert torch.equal(unshuffle_bytes(planes, torch.float32), v)


def test_export_of_a_channel_pruned_model_rebuilds_it_alone(tmp_path):
    from scripts.lib.pruning.channels import ChannelPruner
    from scripts.lib.models.network import architecture_spec, model_from_state
    torch.manual_seed(0)
    model = build_model(10).eval()
    ChannelPruner(model, "l2_channels", [0.5], 32, 8, [model.classifier[1]]).step()
    path = tmp_path / "ch.gz"
    write_sparse_export(model.state_dict(), path, "float32",
                        {"num_classes": 10, "architecture": architecture_spec(model)})
    back = model_from_state(*reversed(read_sparse_export(path))).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(back(x), model(x))


def test_the_export_is_compared_with_the_checkpoint_under_the_same_gzip(tmp_path):
    """Like with like: the gzipped export against the gzipped checkpoint. Unpruned, the export
    saves little against gzip; against the raw file the same bytes would look like a saving that
    is gzip's, not the export's. The results table divides by the gzip size."""
    from scripts.lib.models.network import save_checkpoint
    from scripts.lib.report.results import storage_ratios

    torch.manual_seed(0)
    model = build_model(10)
    save_checkpoint(model, tmp_path / "dense.pt", {"num_classes": 10, "name": "dense"})
    row = {"file_bytes": (tmp_path / "dense.pt").stat().st_size, "gzip_bytes": gzip_size(tmp_path / "dense.pt"),
           "sparse_fp32_bytes": write_sparse_export(model.state_dict(), tmp_path / "e32.gz", "float32"),
           "sparse_fp16_bytes": write_sparse_export(model.state_dict(), tmp_path / "e16.gz", "float16"),
           "accuracy": 0.5, "accuracy_fp16_export": 0.5}
    ratios = storage_ratios(row)
    assert ratios["sparse_fp32_ratio"] == row["sparse_fp32_bytes"] / row["gzip_bytes"]
    assert ratios["sparse_fp16_ratio"] == row["sparse_fp16_bytes"] / row["gzip_bytes"]
    assert 0.8 < ratios["sparse_fp32_ratio"] < 1.0  # nothing pruned: about what gzip already does
    assert row["sparse_fp32_bytes"] / row["file_bytes"] < ratios["sparse_fp32_ratio"]  # the raw file flatters it
