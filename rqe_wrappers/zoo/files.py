"""Member files: sha256 hashing and the safetensors-only check (pickles and zip archives are refused)."""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from rqe_wrappers.errors import ChecksumError, PopulationError


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_PICKLE_HINT = (
    "pickles (SB3 .zip, torch .pt/.pth, .pkl) can run arbitrary code when loaded and are refused; "
    "publish SB3 models with rqe_wrappers.zoo.publish.member_from_sb3, which writes safetensors"
)


def check_safetensors_bytes(data: bytes, source: str) -> None:
    """Refuse anything that is not a safetensors file (pickles and zip archives in particular)."""
    if len(data) >= 10:
        (n,) = struct.unpack("<Q", data[:8])
        if n <= len(data) - 8 and data[8:9] == b"{":
            return  # a safetensors header: 8-byte little-endian length, then JSON
    if data[:1] == b"\x80":
        raise PopulationError(f"{source} is a Python pickle, not safetensors: {_PICKLE_HINT}")
    if data[:4] == b"PK\x03\x04":
        raise PopulationError(
            f"{source} is a zip archive (an SB3 .zip or torch.save file), not safetensors: {_PICKLE_HINT}"
        )
    raise PopulationError(f"{source} is not a safetensors file; {_PICKLE_HINT}")


def read_verified(path: Path, sha256: str) -> bytes:
    """The file's bytes, after checking them against ``sha256`` (what is parsed is what was verified)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PopulationError(f"{path} is missing; re-download the population (rqe zoo pull)") from None
    got = hashlib.sha256(data).hexdigest()
    if got != sha256:
        raise ChecksumError(f"{path}: sha256 is {got}, the manifest says {sha256}; the file is corrupt or was changed")
    return data


#: numpy dtype kinds a member's tensors may have: floats for SB3 weights; scripted arrays may also be
#: bool / int / uint (tables of counts or actions)
FLOAT_KINDS = frozenset("f")
NUMERIC_KINDS = frozenset("fiub")


def check_tensors(
    tensors: Mapping[str, Any], source: str, *, kinds: frozenset[str], error: type[Exception] = PopulationError
) -> None:
    """Refuse tensors of a dtype outside ``kinds`` or with NaN / infinite values (numpy or torch)."""
    for name, t in tensors.items():
        arr = t.detach().cpu().float().numpy() if _is_torch(t) and str(t.dtype) == "torch.bfloat16" else t
        arr = arr.detach().cpu().numpy() if _is_torch(arr) else np.asarray(arr)
        if arr.dtype.kind not in kinds:
            wanted = "floating-point" if kinds == FLOAT_KINDS else "numeric (float, int, uint or bool)"
            raise error(f"{source}: tensor {name!r} has dtype {arr.dtype}; member tensors must be {wanted}")
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            bad = int(arr.size - np.isfinite(arr).sum())
            raise error(
                f"{source}: tensor {name!r} holds {bad} NaN or infinite value(s); a member's weights must be "
                "finite (the policy was likely saved after training diverged)"
            )


def aliases(state: Mapping[str, Any]) -> dict[str, str]:
    """``{key: earlier key}`` for the torch tensors of a state dict that are views of the same memory as an
    earlier key's (e.g. SB3's shared CNN, stored as ``features_extractor``, ``pi_features_extractor`` and
    ``vf_features_extractor``): a member file keeps each only once."""
    seen: dict[tuple, str] = {}
    out = {}
    for key, t in state.items():
        ident = (t.data_ptr(), tuple(t.shape), tuple(t.stride()), str(t.dtype))
        if ident in seen:
            out[key] = seen[ident]
        else:
            seen[ident] = key
    return out


def _is_torch(t: Any) -> bool:
    return type(t).__module__.startswith("torch")
