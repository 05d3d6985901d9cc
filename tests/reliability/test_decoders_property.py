"""Property-based tests of the wire decoders (runtime/protocol/encoding.py) with hypothesis.

Every decoder, on any input, either returns plain data or raises a catalogued public error
(``actor.invalid_request``, ``message.incoming_too_long``, ...): never another exception, never a
hang. Valid messages round-trip. ``RIVET_HYPOTHESIS_EXAMPLES`` raises the number of examples.
"""

from __future__ import annotations

import json
import os
import string

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.errors import RivetError, catalogue
from runtime.protocol import encoding as enc
from runtime.protocol.messages import ActionRequest, SubscriptionRequest
from runtime.protocol.plain import MAX_DEPTH, plain_copy

EXAMPLES = int(os.environ.get("RIVET_HYPOTHESIS_EXAMPLES", "150"))
CATALOGUE = set(catalogue())

fast = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))

ints = st.one_of(st.integers(-(2**63), 2**64 - 1), st.integers(), st.integers(-(2**200), 2**200))
scalars = st.one_of(st.none(), st.booleans(), ints, st.floats(allow_nan=True), st.text(), st.binary())
plain = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=8), inner, max_size=5)),
    max_leaves=30,
)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text()),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=8), inner, max_size=5),
        st.tuples(st.sampled_from(["$BigInt", "$Uint8Array", "$ArrayBuffer", "$Undefined", "$Set", "$$x", "$?"]),
                  inner).map(list),
    ),
    max_leaves=30,
)


def _is_plain(value) -> bool:
    try:
        plain_copy(value)
    except TypeError:
        return False
    return True


def _check(fn, *args):
    """Call a decoder: a plain result or a catalogued public error, nothing else."""
    try:
        out = fn(*args)
    except RivetError as exc:
        assert exc.public, exc
        assert (exc.group, exc.code) in CATALOGUE, exc
        return None
    return out


DECODERS = [
    ("to_server", lambda e, d: enc.decode_to_server(e, d)),
    ("to_client", lambda e, d: enc.decode_to_client(e, d)),
    ("action_request", lambda e, d: enc.decode_action_request(e, d)),
    ("action_response", lambda e, d: enc.decode_action_response(e, d)),
    ("error", lambda e, d: enc.decode_error(e, d)),
    ("loads", lambda e, d: enc.loads(e, d)),
]


@fast
@given(data=st.one_of(st.binary(max_size=2048), st.text(max_size=2048)),
       encoding=st.sampled_from(enc.ENCODINGS))
def test_arbitrary_bytes_and_text(data, encoding):
    for _, decode in DECODERS:
        out = _check(decode, encoding, data)
        if out is not None and not isinstance(out, (ActionRequest, SubscriptionRequest)):
            assert _is_plain(out) or hasattr(out, "__dataclass_fields__"), out


@fast
@given(value=json_values, encoding=st.sampled_from(enc.ENCODINGS))
def test_arbitrary_structures(value, encoding):
    wrapped = [value, {"args": value}, {"body": {"tag": "ActionRequest", "val": {"id": value, "name": "x",
                                                                              "args": [value]}}},
               {"body": {"tag": value, "val": value}}, {"output": value}]
    for v in wrapped:
        try:
            data = json.dumps(v) if encoding == enc.JSON else msgpack.packb(v, use_bin_type=True)
        except (OverflowError, ValueError):  # not representable in this encoding at all
            continue
        for _, decode in DECODERS:
            out = _check(decode, encoding, data)
            if isinstance(out, list):
                assert _is_plain(out)


@fast
@given(value=plain, encoding=st.sampled_from(enc.ENCODINGS))
def test_plain_values_round_trip_or_are_refused_clearly(value, encoding):
    try:
        args = plain_copy([value])
    except TypeError:
        return
    try:
        body = enc.encode_action_request(encoding, args)
    except RivetError as exc:
        assert (exc.group, exc.code) in CATALOGUE
        return
    out = _check(enc.decode_action_request, encoding, body)
    if out is None:
        return  # e.g. larger than the incoming limit
    assert _same(out, args), (out, args)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (a != a and b != b) or a == b or (b != b or abs(b) == float("inf"))  # JSON maps NaN/inf
    if type(a) is not type(b):
        # JSON turns non-finite floats into null
        return a is None and isinstance(b, float)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


@pytest.mark.parametrize("encoding", enc.ENCODINGS)
@pytest.mark.parametrize("depth", [MAX_DEPTH - 2, MAX_DEPTH + 5, 5_000, 30_000])
def test_deep_nesting(encoding, depth):
    value: object = 1
    for _ in range(depth):
        value = [value]
    if encoding == enc.JSON:
        data = "[" * depth + "1" + "]" * depth
        data = '{"args":[' + data + "]}"
    else:
        data = msgpack.packb({"args": [value]}, use_bin_type=True) if depth < 1000 else (
            b"\x81\xa4args\x91" + b"\x91" * depth + b"\x01")
    out = _check(enc.decode_action_request, encoding, data)
    if depth > MAX_DEPTH:
        assert out is None
    for _, decode in DECODERS:
        _check(decode, encoding, data)


@pytest.mark.parametrize("encoding", enc.ENCODINGS)
def test_huge_numbers_and_invalid_utf8(encoding):
    cases: list[bytes | str] = [
        '{"args":[' + "9" * 5000 + "]}",
        '{"args":[1e999999]}',
        '{"args":[-1e999999, NaN, Infinity]}',
        '{"args":[["$BigInt","' + "9" * 5000 + '"]]}',
        '{"args":[["$BigInt","18446744073709551616"]]}',
        '{"args":[["$BigInt","-9223372036854775809"]]}',
        '{"args":[["$BigInt"," 12 "]]}',
        '{"args":[["$Uint8Array","!!!"]]}',
        b'{"args":["\xff\xfe"]}',
        b'{"args":["\xed\xa0\x80"]}',  # a UTF-8 encoded surrogate
        '{"args":["\\ud800"]}',  # a lone surrogate escape
        b"\x81\xa4args\x91\xcf\xff\xff\xff\xff\xff\xff\xff\xff",  # uint64 max
        b"\x81\xa4args\x91\xd3\x80\x00\x00\x00\x00\x00\x00\x00",  # int64 min
        b"\x81\xa4args\x91\xa2\xff\xfe",  # invalid UTF-8 in a msgpack str
        b"\x81\xa4args\x91\xc7\x01\x05\x00",  # an ext type
        b"\x81\xa4args\x91\x81\x01\x02",  # an int map key
        b"\x81\xa4args\xdd\xff\xff\xff\xff",  # an array claiming 4 billion items
        b"\x81\xa4args\xc6\xff\xff\xff\xff",  # a bin claiming 4 GiB
        "\x00" * 100,
        "",
        " ",
    ]
    for data in cases:
        for _, decode in DECODERS:
            out = _check(decode, encoding, data)
            if isinstance(out, list):
                assert _is_plain(out)


@pytest.mark.parametrize("encoding", enc.ENCODINGS)
def test_oversized_messages_are_incoming_too_long(encoding):
    big = '{"args":["' + "x" * (64 * 1024) + '"]}'
    for data in (big, big.encode()):
        with pytest.raises(RivetError) as info:
            enc.decode_action_request(encoding, data)
        assert (info.value.group, info.value.code) == ("message", "incoming_too_long")
        with pytest.raises(RivetError) as info:
            enc.decode_to_server(encoding, data)
        assert (info.value.group, info.value.code) == ("message", "incoming_too_long")


@fast
@given(text=st.text(max_size=300), urlsafe=st.booleans())
def test_actor_input_and_keys(text, urlsafe):
    _check(enc.decode_input, text, urlsafe)
    key = enc.deserialize_key(text)
    assert all(isinstance(p, str) for p in key)
    assert enc.deserialize_key(enc.serialize_key(key)) == key


@fast
@given(parts=st.lists(st.text(alphabet=string.printable + "\\/\x00é漢", max_size=10), max_size=5))
def test_key_strings_round_trip(parts):
    assert enc.deserialize_key(enc.serialize_key(parts)) == tuple(parts)
