"""Actor keys and the layout of an actor's private key-value space.

Inside one actor's KV space the first byte says what a row is, so that one ordered scan per
kind is enough and user KV can never collide with runtime rows:

``[1]`` actor record (state, input, initialized) · ``[2]+conn_id`` hibernated connection ·
``[3]`` inspector token · ``[4]+key`` user KV · ``[5]+id`` schedule.
"""

from __future__ import annotations

from typing import Any

import msgpack

from runtime.errors import InvalidRequest, KeyTooLarge

RECORD = b"\x01"
CONN = b"\x02"
INSPECTOR_TOKEN = b"\x03"
USER_KV = b"\x04"
SCHEDULE = b"\x05"
WORKFLOW = b"\x06"

MAX_KEY_PART = 128
MAX_KEY = 1024


def normalize_key(key: Any) -> tuple[str, ...]:
    """``None``, ``[]`` and no key are one actor; ``"k"`` equals ``["k"]``."""
    if key is None:
        parts: tuple[str, ...] = ()
    elif isinstance(key, str):
        parts = (key,)
    elif isinstance(key, (list, tuple)):
        if not all(isinstance(p, str) for p in key):
            raise InvalidRequest("an actor key must be a str or a list of str", metadata=None)
        parts = tuple(key)
    else:
        raise InvalidRequest(f"an actor key must be a str or a list of str, got {type(key).__name__}")
    total = 0
    for part in parts:
        size = len(part.encode("utf-8", "surrogatepass"))
        if size > MAX_KEY_PART:
            raise KeyTooLarge(f"An actor key part is {size} bytes; each part may be at most {MAX_KEY_PART} bytes")
        total += size
    if total > MAX_KEY:
        raise KeyTooLarge(f"The actor key is {total} bytes; the whole key may be at most {MAX_KEY} bytes")
    return parts


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest byte string greater than every string starting with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, raw=False, strict_map_key=False)
