"""Read a legacy (non-zip) PyTorch ``.pth`` state dict without torch.

The legacy format (``torch.save(..., _use_new_zipfile_serialization=False)``) is a sequence of
pickles followed by raw storage bytes:

1. the magic number, 2. the protocol version, 3. a system-info dict,
4. the object itself, pickled with persistent ids
   ``('storage', StorageType, key, location, numel, view_metadata)`` for tensor storages and
   tensors rebuilt through ``torch._utils._rebuild_tensor_v2``,
5. a list of storage keys, then for each key in that order an int64 little-endian element count
   followed by the raw little-endian elements.

Only a handful of pickle globals are allowed; anything else (``os.system`` ...) is refused, so a
hostile file cannot run code. The result maps parameter names to numpy arrays.
"""

from __future__ import annotations

import collections
import pickle
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001

# Storage class name -> numpy little-endian dtype.
STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle references a global that is not on the allow list."""


@dataclass(frozen=True)
class StorageType:
    """Stands in for ``torch.FloatStorage`` and friends."""

    name: str

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(STORAGE_DTYPES[self.name])


@dataclass
class LazyStorage:
    key: str
    dtype: np.dtype[Any]
    numel: int
    data: np.ndarray | None = None


@dataclass
class LazyTensor:
    storage: LazyStorage
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def materialize(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise pickle.UnpicklingError(f"storage {self.storage.key!r} was never read")
        if not self.size:
            return np.array(data[self.offset], dtype=data.dtype)
        itemsize = data.dtype.itemsize
        end = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride, strict=True))
        if any(n == 0 for n in self.size):
            return np.zeros(self.size, dtype=data.dtype)
        if self.offset < 0 or end >= data.size:
            raise pickle.UnpicklingError(f"tensor view exceeds storage {self.storage.key!r}")
        view = np.lib.stride_tricks.as_strided(
            data[self.offset :],
            shape=self.size,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor_v2(
    storage: LazyStorage,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    *_ignored: Any,
) -> LazyTensor:
    return LazyTensor(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data: LazyTensor, *_ignored: Any) -> LazyTensor:
    return data


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a legacy state dict needs."""

    def __init__(self, file: IO[bytes], storages: dict[str, LazyStorage] | None = None) -> None:
        super().__init__(file)
        self.storages: dict[str, LazyStorage] = {} if storages is None else storages

    def find_class(self, module: str, name: str) -> Any:
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(name)
        raise UnsafePickleError(f"refusing to load pickle global {module}.{name}")

    def persistent_load(self, pid: Any) -> LazyStorage:
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid[:5]
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        if not isinstance(storage_type, StorageType):
            raise pickle.UnpicklingError(f"unsupported storage type {storage_type!r}")
        key = str(key)
        storage = self.storages.get(key)
        if storage is None:
            storage = LazyStorage(key, storage_type.dtype, int(numel))
            self.storages[key] = storage
        return storage


def _read_storages(f: IO[bytes], keys: list[str], storages: dict[str, LazyStorage]) -> None:
    for key in keys:
        storage = storages[str(key)]
        header = f.read(8)
        if len(header) != 8:
            raise pickle.UnpicklingError("truncated file: missing storage size")
        (count,) = struct.unpack("<q", header)
        if count != storage.numel:
            raise pickle.UnpicklingError(
                f"storage {key!r}: file has {count} elements, pickle said {storage.numel}"
            )
        nbytes = count * storage.dtype.itemsize
        raw = f.read(nbytes)
        if len(raw) != nbytes:
            raise pickle.UnpicklingError(f"truncated file: storage {key!r}")
        storage.data = np.frombuffer(raw, dtype=storage.dtype)


def _materialize(obj: Any) -> Any:
    if isinstance(obj, LazyTensor):
        return obj.materialize()
    if isinstance(obj, dict):
        return {k: _materialize(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_materialize(v) for v in obj)
    return obj


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """Load a legacy torch state dict as ``{name: numpy array}`` (in the file's key order)."""
    with open(path, "rb") as f:
        if f.read(2) == b"PK":
            raise ValueError(f"{path} is a zip-format torch file, not the legacy format")
        f.seek(0)
        magic = RestrictedUnpickler(f).load()
        if magic != MAGIC_NUMBER:
            raise pickle.UnpicklingError(f"{path}: not a legacy torch file (bad magic number)")
        version = RestrictedUnpickler(f).load()
        if version != PROTOCOL_VERSION:
            raise pickle.UnpicklingError(f"{path}: unsupported protocol version {version!r}")
        RestrictedUnpickler(f).load()  # sys info: endianness, type sizes
        storages: dict[str, LazyStorage] = {}
        result = RestrictedUnpickler(f, storages).load()
        keys = RestrictedUnpickler(f).load()
        if not isinstance(keys, list):
            raise pickle.UnpicklingError(f"{path}: storage key list missing")
        _read_storages(f, [str(k) for k in keys], storages)
    state = _materialize(result)
    if not isinstance(state, dict):
        raise pickle.UnpicklingError(f"{path}: expected a state dict, got {type(state).__name__}")
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return {str(k): np.asarray(v) for k, v in state.items() if isinstance(v, np.ndarray)}
