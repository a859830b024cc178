"""Instants as the code keeps them (integer milliseconds or microseconds since the epoch, UTC)
and as stores and the wire take them (datetime, google.protobuf.Timestamp). Each name says its
unit, so a millisecond is never read as a microsecond."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from google.protobuf import timestamp_pb2

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)


def datetime_from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def ms_from_datetime(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def datetime_from_us(us: int) -> datetime:
    """Exact (no float): what billing events store."""
    return EPOCH + timedelta(microseconds=us)


def us_from_datetime(moment: datetime) -> int:
    return (moment - EPOCH) // _ONE_US


def timestamp_from_ms(ms: int) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromMilliseconds(ms)
    return ts


def timestamp_from_us(us: int) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromMicroseconds(us)
    return ts
