"""Storage that reflects sparsity: a sparse export of a state_dict, and its loader.

A dense checkpoint stores every pruned weight as a 4-byte zero. The sparse
export stores, per tensor, whichever encoding is smallest:

  dense   - the values as they are;
  bitmask - one bit per element saying "non-zero", then the non-zero values;
  csr     - the tensor as a (rows, rest) matrix in compressed sparse rows:
            row pointers, column indices, non-zero values (wins above ~94 % sparsity).

Values can be kept as float32 (lossless) or float16. The values of all tensors
form one stream, stored byte-shuffled (all first bytes, then all second bytes,
...: the sign/exponent bytes of weights are alike and gzip finds them, as in
HDF5's and Blosc's shuffle filter); the bitmasks form another. The export is a
torch.save'd dict of plain tensors and lists (loadable with weights_only=True), gzipped.

The export is gzipped, so its size is compared with the dense checkpoint's size under the same
gzip (gzip_bytes, GZIP_LEVEL), never with the raw file: gzip alone takes an unpruned MobileNetV2
checkpoint to about 90 % of its file, and a 90 %-sparse one to about 19 % (zeros compress), so a
ratio to the raw file credits the export with what gzip does.
"""
from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import torch

from scripts.lib.files import atomic_output

FORMAT = "sparse-state-dict-v2"
VALUE_DTYPES = {"float32": torch.float32, "float16": torch.float16}


def shuffle_bytes(values: torch.Tensor) -> torch.Tensor:
    """(n,) values -> (element_size, n) uint8: byte k of every value in row k."""
    return values.contiguous().view(torch.uint8).reshape(-1, values.element_size()).T.contiguous()


def unshuffle_bytes(planes: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return planes.T.contiguous().view(dtype).reshape(-1)


def _index_dtype(max_value: int) -> torch.dtype:
    return torch.int16 if max_value < 2 ** 15 else torch.int32


def encode_tensor(t: torch.Tensor, value_dtype: torch.dtype) -> dict:
    """The smallest of the dense, bitmask and CSR encodings of one tensor.

    Non-float tensors (BatchNorm's step counter) are kept as Python lists.
    """
    t = t.detach().cpu()
    base = {"shape": list(t.shape), "dtype": str(t.dtype).removeprefix("torch.")}
    if not t.is_floating_point() or t.numel() == 0:
        return {**base, "encoding": "list", "data": t.reshape(-1).tolist()}
    flat = t.reshape(-1)
    nonzero = flat != 0
    values = flat[nonzero].to(value_dtype)
    base["value_dtype"] = str(value_dtype).removeprefix("torch.")
    candidates = [{**base, "encoding": "dense", "values": flat.to(value_dtype)},
                  {**base, "encoding": "bitmask", "values": values,
                   "mask": torch.from_numpy(np.packbits(nonzero.numpy()))}]
    if t.dim() >= 2:
        matrix = nonzero.reshape(t.shape[0], -1)
        rows, cols = torch.nonzero(matrix, as_tuple=True)
        crow = torch.zeros(t.shape[0] + 1, dtype=torch.int64)
        crow[1:] = torch.cumsum(torch.bincount(rows, minlength=t.shape[0]), 0)
        candidates.append({**base, "encoding": "csr", "values": values,
                           "crow": crow.to(_index_dtype(int(crow[-1]))),
                           "col": cols.to(_index_dtype(matrix.shape[1]))})
    return min(candidates, key=_raw_bytes)


def _raw_bytes(entry: dict) -> int:
    return sum(v.numel() * v.element_size() for v in entry.values() if isinstance(v, torch.Tensor))


def decode_tensor(entry: dict) -> torch.Tensor:
    dtype = getattr(torch, entry["dtype"])
    shape = entry["shape"]
    if entry["encoding"] == "list":
        return torch.tensor(entry["data"], dtype=dtype).reshape(shape)
    values = entry["values"].to(dtype)
    if entry["encoding"] == "dense":
        return values.reshape(shape)
    n = int(np.prod(shape)) if shape else 1
    flat = torch.zeros(n, dtype=dtype)
    if entry["encoding"] == "bitmask":
        nonzero = torch.from_numpy(np.unpackbits(entry["mask"].numpy(), count=n).astype(bool))
        flat[nonzero] = values
    elif entry["encoding"] == "csr":
        crow = entry["crow"].to(torch.int64)
        rows = torch.repeat_interleave(torch.arange(len(crow) - 1), crow[1:] - crow[:-1])
        width = n // shape[0]
        flat[rows * width + entry["col"].to(torch.int64)] = values
    else:
        raise ValueError(f"unknown encoding {entry['encoding']!r}")
    return flat.reshape(shape)


def pack(entries: dict, value_dtype: torch.dtype) -> dict:
    """One payload for all tensors: their values in one byte-shuffled stream and their
    bitmasks in one byte string (one stream compresses better than hundreds of small
    ones, and a torch.save record per tensor would cost ~100 bytes of container each)."""
    values, masks, layout = [], [], {}
    for name, e in entries.items():
        e = dict(e)
        if "values" in e:
            values.append(e.pop("values"))
            e["n_values"] = values[-1].numel()
        if "mask" in e:
            masks.append(e.pop("mask"))
            e["n_mask_bytes"] = masks[-1].numel()
        layout[name] = e
    return {"layout": layout,
            "values": shuffle_bytes(torch.cat(values) if values else torch.zeros(0, dtype=value_dtype)),
            "masks": torch.cat(masks) if masks else torch.zeros(0, dtype=torch.uint8)}


def unpack(payload: dict, value_dtype: torch.dtype) -> dict:
    values = unshuffle_bytes(payload["values"], value_dtype)
    masks = payload["masks"]
    entries, v, m = {}, 0, 0
    for name, e in payload["layout"].items():
        e = dict(e)
        if "n_values" in e:
            e["values"], v = values[v:v + e["n_values"]], v + e["n_values"]
        if "n_mask_bytes" in e:
            e["mask"], m = masks[m:m + e["n_mask_bytes"]], m + e["n_mask_bytes"]
        entries[name] = e
    return entries


# gzip's own default level (what `gzip FILE` does). Measured on MobileNetV2 checkpoints here:
# level 9 took 8-12x as long (3.8 s against 0.5 s for a 50 %-sparse 9 MB checkpoint) for files
# 2 % smaller, and it was most of every evaluate job's time.
GZIP_LEVEL = 6


def gzip_bytes(blob: bytes) -> bytes:
    """`blob` gzipped at GZIP_LEVEL; mtime 0, so the same bytes give the same file."""
    return gzip.compress(blob, compresslevel=GZIP_LEVEL, mtime=0)


def sparse_export_bytes(state_dict: dict, value_dtype: str = "float32", meta: dict | None = None) -> bytes:
    """`meta`: JSON-like facts to keep beside the tensors (the checkpoint's: number of
    classes, layer widths of a channel-pruned model), so the export rebuilds its model alone."""
    if value_dtype not in VALUE_DTYPES:
        raise ValueError(f"value_dtype must be one of {sorted(VALUE_DTYPES)}, got {value_dtype!r}")
    dtype = VALUE_DTYPES[value_dtype]
    payload = {"format": FORMAT, "value_dtype": value_dtype, "meta": meta or {},
               **pack({k: encode_tensor(v, dtype) for k, v in state_dict.items()}, dtype)}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return gzip_bytes(buffer.getvalue())


def write_sparse_export(state_dict: dict, path, value_dtype: str = "float32", meta: dict | None = None) -> int:
    """Write the gzipped sparse export; return its size in bytes."""
    blob = sparse_export_bytes(state_dict, value_dtype, meta)
    with atomic_output(path) as tmp:
        Path(tmp).write_bytes(blob)
    return len(blob)


def read_sparse_export(path) -> tuple[dict, dict]:
    """The state_dict (values cast to their original dtype) and the meta of a sparse export.

    `scripts.lib.models.network.model_from_state(meta, state_dict)` rebuilds the model.
    """
    payload = torch.load(io.BytesIO(gzip.decompress(Path(path).read_bytes())), weights_only=True)
    if payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    entries = unpack(payload, VALUE_DTYPES[payload["value_dtype"]])
    return {k: decode_tensor(e) for k, e in entries.items()}, payload["meta"]

