"""The block codec round-trips every allowed dtype and names the defect of malformed bytes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from services.common.codec import ALLOWED_DTYPES, BlockError, decode_block, encode_block


@given(
    hnp.arrays(
        dtype=st.sampled_from(sorted(ALLOWED_DTYPES)).map(np.dtype),
        shape=hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=6),
    )
)
@settings(max_examples=150, deadline=None)
def test_round_trip_preserves_values_dtype_and_shape(array: np.ndarray) -> None:
    block = decode_block(encode_block(array))
    assert block.array.dtype == array.dtype
    assert block.array.shape == array.shape
    np.testing.assert_array_equal(block.array, array)


def test_labels_meta_and_alignment() -> None:
    array = np.arange(2 * 3 * 5, dtype=np.float32).reshape(2, 3, 5)
    data = encode_block(array, rows=["AAPL", "MSFT"], fields=list("ohlcv"), meta={"as_of": "2026-11-13"})
    block = decode_block(data)
    assert block.rows == ("AAPL", "MSFT")
    assert block.fields == tuple("ohlcv")
    assert block.meta == {"as_of": "2026-11-13"}
    assert block.array.ctypes.data % 16 == 0
    np.testing.assert_array_equal(block.column("c"), array[..., 3])
    with pytest.raises(KeyError, match="no field 'x'"):
        block.column("x")


def test_non_contiguous_input_is_encoded_in_c_order() -> None:
    array = np.arange(12, dtype=np.float64).reshape(3, 4).T
    np.testing.assert_array_equal(decode_block(encode_block(array)).array, array)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "too short"),
        (b"NOPE\x00\x00\x00\x00", "bad magic"),
        (b"TBK1\xff\xff\x00\x00{}", "exceeds"),
        (b"TBK1\x02\x00\x00\x00{]", "malformed"),
    ],
)
def test_malformed_bytes_raise_block_error(data: bytes, message: str) -> None:
    with pytest.raises(BlockError, match=message):
        decode_block(data)


def test_truncated_body_and_bad_labels_are_reported() -> None:
    data = encode_block(np.ones((4, 5), dtype=np.float32), rows=list("abcd"))
    with pytest.raises(BlockError, match="body is"):
        decode_block(data[:-3])
    with pytest.raises(BlockError, match="row labels"):
        encode_block(np.ones((4, 5), dtype=np.float32), rows=["a"])
    with pytest.raises(BlockError, match="field labels"):
        encode_block(np.ones((4, 5), dtype=np.float32), fields=["a"])
    with pytest.raises(BlockError, match="not allowed"):
        encode_block(np.array(["x"]))
