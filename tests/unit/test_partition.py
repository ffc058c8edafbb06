"""The murmur2 partitioner matches Java's byte for byte."""

from __future__ import annotations

import pytest

from pipeline.core.contract.partition import murmur2, partition_for_key

# Expected values from Apache Kafka's clients/src/test/.../utils/UtilsTest.java (testMurmur2).
JAVA_VECTORS = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]


@pytest.mark.parametrize(("data", "expected"), JAVA_VECTORS)
def test_murmur2_matches_java(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_partition_is_non_negative_and_in_range() -> None:
    for i in range(2000):
        key = f"queue-{i}".encode()
        assert 0 <= partition_for_key(key, 7) < 7


def test_partition_uses_positive_hash_modulo() -> None:
    # "21" hashes negative: Java masks the sign bit instead of taking abs().
    assert partition_for_key(b"21", 3) == (-973932308 & 0x7FFFFFFF) % 3


def test_partition_rejects_zero_partitions() -> None:
    with pytest.raises(ValueError, match="partitions must be positive"):
        partition_for_key(b"k", 0)
