"""Kafka's default partitioner, as the Java client computes it.

Java's ``BuiltInPartitioner`` (and librdkafka's ``murmur2``/``murmur2_random``) put a keyed
record in ``toPositive(murmur2(key)) % partitions``. Producing with the same rule from Python
means a Java, Flink or Kafka Streams producer writing the same entity id lands on the same
partition, so per-entity order holds across producers. This module lets tests and tools
predict the partition without a broker.

Reference: ``org.apache.kafka.common.utils.Utils.murmur2`` and ``Utils.toPositive``.
"""

from __future__ import annotations

__all__ = ["murmur2", "partition_for_key"]

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK32 = 0xFFFFFFFF


def _to_int32(value: int) -> int:
    value &= _MASK32
    return value - (1 << 32) if value & 0x80000000 else value


def murmur2(data: bytes) -> int:
    """Java-compatible 32-bit murmur2 of ``data``, as a signed int like Java returns it."""
    length = len(data)
    h = (_SEED ^ length) & _MASK32
    tail = length & ~3
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> 24
        k = (k * _M) & _MASK32
        h = (h * _M) & _MASK32
        h ^= k
    remainder = length & 3
    if remainder == 3:
        h ^= data[tail + 2] << 16
    if remainder >= 2:
        h ^= data[tail + 1] << 8
    if remainder >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return _to_int32(h)


def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Java's default partitioner picks for a non-null ``key``.

    Raises:
        ValueError: ``partitions`` is not positive.
    """
    if partitions <= 0:
        raise ValueError(f"partitions must be positive, got {partitions}")
    return (murmur2(key) & 0x7FFFFFFF) % partitions
