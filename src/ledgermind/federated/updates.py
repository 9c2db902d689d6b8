"""Model updates as NDArrays: validation, flattening, and a canonical byte encoding with its SHA-256 digest.

Validation is the hard gate before aggregation: an update with the wrong number or shapes of arrays, a non-numeric
dtype, NaN or infinite values, or a norm or size above the consortium's limits is rejected with an
``InvalidUpdateError`` subclass whose message is one line saying what was expected and what was found. (Statistical
suspicion, e.g. an update pointing against the others, is the job of ``anomaly``, not of this module.)

Canonical encoding (version 1), so that a digest committed on chain can be re-checked anywhere::

    magic      8 bytes   b"LMNDARR1"
    count      u32       number of arrays
    then for each array, in list order:
      dtype    u8 length L, then L ASCII bytes: numpy's dtype.str in little-endian form ("<f8", "<i4", "|u1", "|b1")
      ndim     u8
      shape    ndim x u64
      data     prod(shape) * itemsize bytes, C (row-major) order, little-endian

All header integers are unsigned big-endian. Allowed dtypes: bool, int8-64, uint8-64, float16/32/64. The bytes
depend only on dtype, shape and values, never on the platform's byte order, memory layout (views, Fortran order,
strides) or numpy version, so the same arrays give the same digest everywhere. Values are encoded bit for bit: no
rounding and no normalization, so float32 and float64 copies of the same numbers, or 0.0 and -0.0, are different
updates with different digests.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence

import numpy as np

from ledgermind.errors import InvalidInputError

NDArrays = list[np.ndarray]

MAGIC = b"LMNDARR1"
# numpy kind codes that may travel: b(ool), i(nt), u(nsigned), f(loat). Complex, object, strings, datetimes may not.
_ALLOWED_KINDS = "biuf"
_MAX_NDIM = 32  # numpy's own limit; also bounds how much a hostile header can make us read


class InvalidUpdateError(InvalidInputError):
    """An update was rejected. ``code`` is a short machine-readable reason; ``str(error)`` is one line for humans."""

    code = "invalid"

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UpdateShapeError(InvalidUpdateError):
    """Wrong number of arrays, or an array of the wrong shape."""

    code = "shape"


class UpdateDtypeError(InvalidUpdateError):
    """An array (or the update itself) is not numeric."""

    code = "dtype"


class NonFiniteUpdateError(InvalidUpdateError):
    """An array holds NaN or +-Inf."""

    code = "non_finite"


class UpdateNormError(InvalidUpdateError):
    """The update's L2 norm (all arrays together) exceeds the limit."""

    code = "norm"


class UpdateSizeError(InvalidUpdateError):
    """The update's encoded size exceeds the limit."""

    code = "size"


class EncodingError(InvalidInputError):
    """Bytes are not a valid canonical encoding (bad magic, truncated, trailing garbage, unknown dtype)."""


def shapes_of(arrays: Sequence[np.ndarray]) -> list[tuple[int, ...]]:
    """The shape of each array, in order: what ``validate_update`` expects."""
    return [tuple(int(d) for d in np.shape(a)) for a in arrays]


def validate_update(
    update: object,
    expected_shapes: Sequence[Sequence[int]],
    *,
    max_norm: float | None = None,
    max_bytes: int | None = None,
) -> NDArrays:
    """Check ``update`` against the model's parameter shapes and the limits; return it as float64 arrays.

    Checks, in order (the first failure is raised): it is a list or tuple of exactly ``len(expected_shapes)``
    arrays (UpdateShapeError); each converts to a numeric array (UpdateDtypeError); each has its expected shape
    (UpdateShapeError); all values are finite (NonFiniteUpdateError); the canonical encoding is at most
    ``max_bytes`` (UpdateSizeError); the global L2 norm is at most ``max_norm`` (UpdateNormError).
    The returned arrays are new float64 copies, so later changes by the sender cannot affect them.
    """
    if not isinstance(update, (list, tuple)):
        raise UpdateShapeError(f"update must be a list of arrays, got {type(update).__name__}")
    if len(update) != len(expected_shapes):
        raise UpdateShapeError(f"update has {len(update)} arrays, expected {len(expected_shapes)}")
    arrays = []
    for i, (a, shape) in enumerate(zip(update, expected_shapes)):
        try:
            arr = np.asarray(a)
        except Exception as exc:  # ragged nested lists and the like: numpy refuses them
            raise UpdateDtypeError(f"array {i} is not an array: {exc}") from None
        if arr.dtype.kind not in _ALLOWED_KINDS:
            raise UpdateDtypeError(f"array {i} has dtype {arr.dtype}, expected a numeric dtype")
        if arr.shape != tuple(shape):
            raise UpdateShapeError(f"array {i} has shape {arr.shape}, expected {tuple(shape)}")
        arrays.append(arr)
    for i, arr in enumerate(arrays):
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            bad = "NaN" if np.isnan(arr).any() else "Inf"
            raise NonFiniteUpdateError(f"array {i} contains {bad} ({int((~np.isfinite(arr)).sum())} values)")
    if max_bytes is not None:
        size = encoded_size(arrays)
        if size > max_bytes:
            raise UpdateSizeError(f"update encodes to {size} bytes, limit {max_bytes}")
    out = [np.array(a, dtype=np.float64, copy=True) for a in arrays]
    if max_norm is not None:
        norm = global_norm(out)
        if not norm <= max_norm:  # also catches an overflow to inf when squaring huge float64 values
            raise UpdateNormError(f"update norm {norm:.4g} exceeds limit {max_norm:.4g}")
    return out


def global_norm(arrays: Sequence[np.ndarray]) -> float:
    """L2 norm of all arrays taken together (as if flattened into one vector)."""
    with np.errstate(over="ignore"):  # a hostile update may overflow: the norm is then inf, which limits reject
        return float(np.sqrt(sum(float(np.sum(np.square(np.asarray(a, dtype=np.float64)))) for a in arrays)))


def flatten(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Concatenate the arrays, each in C order, into one float64 vector."""
    if not arrays:
        return np.zeros(0)
    return np.concatenate([np.asarray(a, dtype=np.float64).ravel() for a in arrays])


def unflatten(vector: np.ndarray, shapes: Sequence[Sequence[int]]) -> NDArrays:
    """Inverse of ``flatten``: cut ``vector`` into arrays of ``shapes``.

    Raises UpdateShapeError if ``vector`` is not 1-D with exactly the total number of elements.
    """
    vector = np.asarray(vector, dtype=np.float64)
    sizes = [int(np.prod(s, dtype=np.int64)) for s in shapes]
    if vector.ndim != 1 or vector.size != sum(sizes):
        raise UpdateShapeError(f"vector has shape {vector.shape}, expected ({sum(sizes)},) for shapes {list(shapes)}")
    out, start = [], 0
    for shape, size in zip(shapes, sizes):
        out.append(vector[start : start + size].reshape(tuple(shape)).copy())
        start += size
    return out


def _canonical(a: np.ndarray) -> np.ndarray:
    arr = np.asarray(a)
    if arr.dtype.kind not in _ALLOWED_KINDS:
        raise EncodingError(f"cannot encode dtype {arr.dtype}: only bool, int, uint and float arrays travel")
    if arr.ndim > _MAX_NDIM:
        raise EncodingError(f"cannot encode {arr.ndim} dimensions, limit {_MAX_NDIM}")
    # one byte order and one memory layout, whatever the platform or the view we were handed
    # (np.asarray with order="C", not np.ascontiguousarray, which turns a 0-d array into shape (1,))
    return np.asarray(arr, dtype=arr.dtype.newbyteorder("<"), order="C")


def encode(arrays: Sequence[np.ndarray]) -> bytes:
    """The canonical bytes of ``arrays`` (see the module docstring).

    Raises EncodingError for a dtype that may not travel.
    """
    parts = [MAGIC, struct.pack(">I", len(arrays))]
    for a in arrays:
        arr = _canonical(a)
        code = arr.dtype.str.encode("ascii")
        parts.append(struct.pack(">B", len(code)) + code + struct.pack(">B", arr.ndim))
        parts.append(struct.pack(f">{arr.ndim}Q", *arr.shape))
        parts.append(arr.tobytes(order="C"))
    return b"".join(parts)


def encoded_size(arrays: Sequence[np.ndarray]) -> int:
    """Length of ``encode(arrays)`` without building it."""
    size = len(MAGIC) + 4
    for a in arrays:
        arr = np.asarray(a)
        size += 1 + len(arr.dtype.newbyteorder("<").str) + 1 + 8 * arr.ndim + arr.nbytes
    return size


def decode(data: bytes, *, max_bytes: int | None = None) -> NDArrays:
    """Parse canonical bytes back into arrays (native byte order). Round-trips ``encode`` exactly.

    Raises UpdateSizeError if ``len(data) > max_bytes`` and EncodingError for anything that is not exactly one
    valid encoding: wrong magic, a dtype that may not travel, truncation, or trailing bytes.
    """
    view = memoryview(data)
    if max_bytes is not None and len(view) > max_bytes:
        raise UpdateSizeError(f"encoding has {len(view)} bytes, limit {max_bytes}")
    if bytes(view[: len(MAGIC)]) != MAGIC:
        raise EncodingError(f"bad magic {bytes(view[:len(MAGIC)])!r}, expected {MAGIC!r}")
    pos = len(MAGIC)

    def take(n: int, what: str) -> memoryview:
        nonlocal pos
        if pos + n > len(view):
            raise EncodingError(f"truncated at byte {pos}: {what} needs {n} bytes, {len(view) - pos} left")
        chunk = view[pos : pos + n]
        pos += n
        return chunk

    (count,) = struct.unpack(">I", take(4, "array count"))
    out = []
    for i in range(count):
        (code_len,) = struct.unpack(">B", take(1, f"array {i} dtype length"))
        code = bytes(take(code_len, f"array {i} dtype")).decode("ascii", errors="replace")
        try:
            dtype = np.dtype(code)
        except TypeError:
            raise EncodingError(f"array {i} has unknown dtype {code!r}") from None
        if dtype.kind not in _ALLOWED_KINDS or dtype.str != code or (dtype.itemsize > 1 and code[0] != "<"):
            raise EncodingError(f"array {i} has dtype {code!r}, expected a little-endian bool/int/uint/float code")
        (ndim,) = struct.unpack(">B", take(1, f"array {i} ndim"))
        if ndim > _MAX_NDIM:
            raise EncodingError(f"array {i} has {ndim} dimensions, limit {_MAX_NDIM}")
        shape = struct.unpack(f">{ndim}Q", take(8 * ndim, f"array {i} shape"))
        nbytes = 0 if 0 in shape else dtype.itemsize  # an empty array has no data, whatever its other sides
        for d in shape:  # multiply step by step so a hostile shape cannot make us allocate before the length check
            nbytes *= d
            if nbytes > len(view):
                break
        raw = take(nbytes, f"array {i} data")
        try:
            out.append(np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=True))
        except ValueError as e:  # an empty array with a side numpy cannot hold
            raise EncodingError(f"array {i} has shape {list(shape)}: {e}") from None
    if pos != len(view):
        raise EncodingError(f"{len(view) - pos} trailing bytes after {count} arrays")
    return out


def digest(arrays: Sequence[np.ndarray]) -> str:
    """SHA-256 of ``encode(arrays)``, as 64 lowercase hex characters: the value to commit on chain."""
    return hashlib.sha256(encode(arrays)).hexdigest()


__all__ = [
    "MAGIC",
    "EncodingError",
    "InvalidUpdateError",
    "NDArrays",
    "NonFiniteUpdateError",
    "UpdateDtypeError",
    "UpdateNormError",
    "UpdateShapeError",
    "UpdateSizeError",
    "decode",
    "digest",
    "encode",
    "encoded_size",
    "flatten",
    "global_norm",
    "shapes_of",
    "unflatten",
    "validate_update",
]
