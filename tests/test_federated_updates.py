"""Update validation, flattening, and the canonical encoding and digest (with tampered encodings)."""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ledgermind.federated.updates import (
    MAGIC,
    EncodingError,
    InvalidUpdateError,
    NonFiniteUpdateError,
    UpdateDtypeError,
    UpdateNormError,
    UpdateShapeError,
    UpdateSizeError,
    decode,
    digest,
    encode,
    encoded_size,
    flatten,
    global_norm,
    unflatten,
    validate_update,
)

SHAPES = [(3, 2), (2,)]


def good():
    return [np.arange(6, dtype=np.float64).reshape(3, 2) / 10, np.array([0.5, -0.5])]


# --- validation ---------------------------------------------------------------------------------------------------

def test_valid_update_comes_back_as_float64_copies():
    update = [np.arange(6, dtype=np.float32).reshape(3, 2), [1, 2]]
    out = validate_update(update, SHAPES)
    assert [a.dtype for a in out] == [np.float64, np.float64]
    update[0][0, 0] = 99  # the sender changes its array afterwards: what we validated must not change
    assert out[0][0, 0] == 0


@pytest.mark.parametrize(
    "update, error, message",
    [
        ("not a list", UpdateShapeError, "must be a list of arrays, got str"),
        ([np.zeros((3, 2))], UpdateShapeError, "update has 1 arrays, expected 2"),
        ([np.zeros((3, 2)), np.zeros(2), np.zeros(1)], UpdateShapeError, "update has 3 arrays, expected 2"),
        ([np.zeros((2, 3)), np.zeros(2)], UpdateShapeError, r"array 0 has shape \(2, 3\), expected \(3, 2\)"),
        ([np.zeros((3, 2)), np.zeros((2, 1))], UpdateShapeError, r"array 1 has shape \(2, 1\), expected \(2,\)"),
        ([np.zeros((3, 2)), np.array(["a", "b"])], UpdateDtypeError, "array 1 has dtype <U1, expected a numeric"),
        ([np.zeros((3, 2)), np.array([1 + 2j, 0])], UpdateDtypeError, "complex128"),
        ([np.zeros((3, 2)), [[1.0], [2.0, 3.0]]], UpdateDtypeError, "array 1 is not an array"),
        ([np.zeros((3, 2)), np.array([object(), 1], dtype=object)], UpdateDtypeError, "dtype object"),
        ([np.zeros((3, 2)), np.array([np.nan, 0])], NonFiniteUpdateError, r"array 1 contains NaN \(1 values\)"),
        ([np.full((3, 2), np.inf), np.zeros(2)], NonFiniteUpdateError, r"array 0 contains Inf \(6 values\)"),
    ],
)
def test_rejections_name_the_problem_on_one_line(update, error, message):
    with pytest.raises(error, match=message) as info:
        validate_update(update, SHAPES)
    assert isinstance(info.value, InvalidUpdateError)
    assert "\n" not in str(info.value) and info.value.reason == str(info.value)
    assert info.value.code in {"shape", "dtype", "non_finite"}


def test_norm_and_size_limits():
    update = good()
    norm = global_norm(update)
    assert validate_update(update, SHAPES, max_norm=norm * 1.01)
    with pytest.raises(UpdateNormError, match="update norm .* exceeds limit"):
        validate_update(update, SHAPES, max_norm=norm * 0.99)
    with pytest.raises(UpdateNormError):  # overflow to inf is still "too large", not a crash
        validate_update([np.full((3, 2), 1e200), np.zeros(2)], SHAPES, max_norm=1e300)
    size = encoded_size(update)
    assert validate_update(update, SHAPES, max_bytes=size)
    with pytest.raises(UpdateSizeError, match=f"update encodes to {size} bytes, limit {size - 1}"):
        validate_update(update, SHAPES, max_bytes=size - 1)


# --- flatten ------------------------------------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.lists(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4), min_size=1, max_size=4), st.data())
def test_flatten_unflatten_round_trip(shapes, data):
    arrays = [data.draw(hnp.arrays(np.float64, s, elements=st.floats(-1e6, 1e6))) for s in shapes]
    back = unflatten(flatten(arrays), [a.shape for a in arrays])
    assert all(np.array_equal(a, b) for a, b in zip(arrays, back))


def test_unflatten_refuses_wrong_length():
    with pytest.raises(UpdateShapeError, match=r"vector has shape \(7,\), expected \(8,\)"):
        unflatten(np.zeros(7), SHAPES)


# --- canonical encoding and digest --------------------------------------------------------------------------------

def test_encoding_matches_the_documented_layout():
    """Built by hand from the module docstring, not from the encoder: a second implementation must agree."""
    arrays = [np.arange(6, dtype=np.float64).reshape(2, 3), np.array([1, -2], dtype=np.int32), np.array([True, False])]
    expected = MAGIC + struct.pack(">I", 3)
    expected += bytes([3]) + b"<f8" + bytes([2]) + struct.pack(">QQ", 2, 3) + struct.pack("<6d", 0, 1, 2, 3, 4, 5)
    expected += bytes([3]) + b"<i4" + bytes([1]) + struct.pack(">Q", 2) + struct.pack("<2i", 1, -2)
    expected += bytes([3]) + b"|b1" + bytes([1]) + struct.pack(">Q", 2) + bytes([1, 0])
    assert encode(arrays) == expected
    assert digest(arrays) == hashlib.sha256(expected).hexdigest()
    # the vector itself, so any change of format is a visible, deliberate change
    assert digest(arrays) == "ff656ab135a5360bd48260bc00725ca739c88933096947d9f91309937f9da9f1"
    assert encoded_size(arrays) == len(expected)


def test_digest_ignores_memory_layout_and_byte_order():
    base = np.arange(12, dtype=np.float64).reshape(3, 4)
    wide = np.zeros((3, 8))
    wide[:, ::2] = base
    variants = [
        base,
        np.asfortranarray(base),
        base.astype(">f8"),  # big-endian in memory
        wide[:, ::2],  # a strided view
        base.T.copy().T,  # a transposed view of a copy
    ]
    assert len({digest([v]) for v in variants}) == 1


def test_digest_sees_dtype_shape_and_every_bit():
    a = np.linspace(-1, 1, 8)
    ref = digest([a])
    assert digest([a.astype(np.float32)]) != ref
    assert digest([a.reshape(2, 4)]) != ref
    assert digest([a[:4], a[4:]]) != ref
    flipped = a.copy()
    flipped.view(np.uint64)[3] ^= 1  # one bit of one value
    assert digest([flipped]) != ref
    assert digest([np.array([0.0])]) != digest([np.array([-0.0])])  # bit-exact, documented


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        hnp.arrays(
            dtype=st.one_of(hnp.floating_dtypes(endianness="?"), hnp.integer_dtypes(endianness="?"),
                            hnp.unsigned_integer_dtypes(endianness="?"), hnp.boolean_dtypes()),
            shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3),
        ),
        max_size=4,
    )
)
@example([np.zeros((3, 2, 0))])  # empty, with sides whose product alone would pass the end of the encoding
def test_decode_round_trips_encode(arrays):
    data = encode(arrays)
    back = decode(data)
    assert len(back) == len(arrays)
    for a, b in zip(arrays, back):
        assert a.shape == b.shape and a.dtype.newbyteorder("=") == b.dtype.newbyteorder("=")
        assert a.tobytes() == b.astype(a.dtype).tobytes()  # bit for bit, NaN payloads included
    assert encode(back) == data


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda b: b[:-1], "truncated"),
        (lambda b: b + b"\x00", "1 trailing bytes"),
        (lambda b: b"LMNDARR2" + b[8:], "bad magic"),
        (lambda b: b[:13] + b">" + b[14:], "expected a little-endian"),  # first dtype code "<f8" -> ">f8"
        (lambda b: b[:13] + b"<c8" + b[16:], "expected a little-endian bool/int/uint/float"),  # complex
        (lambda b: b[:13] + b"<zz" + b[16:], "unknown dtype"),
        (lambda b: b[:8] + struct.pack(">I", 3) + b[12:], "truncated"),  # claims one more array
        (lambda b: b[:17] + struct.pack(">Q", 2**62) + b[25:], "truncated"),  # hostile shape: no huge allocation
        (lambda b: b[:8] + struct.pack(">I", 1) + b[12:], "trailing bytes"),  # claims one fewer array
    ],
)
def test_tampered_encodings_are_refused(tamper, message):
    data = encode(good())
    with pytest.raises(EncodingError, match=message):
        decode(tamper(data))


def test_an_empty_array_with_a_side_numpy_cannot_hold_is_refused():
    data = MAGIC + struct.pack(">I", 1) + struct.pack(">B", 3) + b"<f8" + struct.pack(">B", 2)
    with pytest.raises(EncodingError, match="array 0 has shape"):
        decode(data + struct.pack(">2Q", 2**64 - 1, 0))
    assert decode(data + struct.pack(">2Q", 7, 0))[0].shape == (7, 0)


def test_decode_size_limit_and_untravelable_dtypes():
    data = encode(good())
    with pytest.raises(UpdateSizeError, match="limit"):
        decode(data, max_bytes=len(data) - 1)
    with pytest.raises(EncodingError, match="cannot encode dtype"):
        encode([np.array(["x"])])
