"""The wire encodings (runtime.protocol.encoding) without a server."""

from __future__ import annotations

import json

import msgpack
import pytest

from runtime.errors import IncomingTooLong, InvalidRequest, OutgoingTooLong, UnsupportedEncoding
from runtime.protocol import encoding as enc
from runtime.protocol.messages import ActionRequest, ActionResponse, Error, Event, Init, SubscriptionRequest


def test_json_compat_tags_bytes_bigints_and_dollar_lists():
    value = {"b": b"\x00\x01\xff", "big": 2**60, "small": 2**53 - 1, "neg": -(2**62), "tagged": ["$x", 1],
             "nested": [["$BigInt", "1"]], "f": 1.5}
    wire = enc.to_json_compat(value)
    assert wire == {
        "b": ["$Uint8Array", "AAH/"],
        "big": ["$BigInt", str(2**60)],
        "small": 2**53 - 1,
        "neg": ["$BigInt", str(-(2**62))],
        "tagged": ["$$x", 1],
        "nested": [["$$BigInt", "1"]],
        "f": 1.5,
    }
    assert enc.from_json_compat(json.loads(json.dumps(wire))) == value


def test_json_compat_reads_every_rivetkit_tag():
    assert enc.from_json_compat(["$ArrayBuffer", "AQI="]) == b"\x01\x02"
    assert enc.from_json_compat(["$Undefined", 0]) is None
    assert enc.from_json_compat(["$Set", [1, ["$BigInt", "9007199254740993"]]]) == [1, 9007199254740993]
    assert enc.from_json_compat(["$$Set", [1]]) == ["$Set", [1]]
    with pytest.raises(InvalidRequest):
        enc.from_json_compat(["$Nope", 1])
    with pytest.raises(InvalidRequest):
        enc.from_json_compat(["$BigInt", "12x"])
    with pytest.raises(InvalidRequest):
        enc.from_json_compat(["$BigInt", str(2**64)])  # not a 64-bit integer
    with pytest.raises(InvalidRequest):
        enc.from_json_compat(["$Uint8Array", "not base64!"])


def test_json_socket_messages_have_rivetkit_shapes():
    assert json.loads(enc.encode_to_client("json", Init("a1", "c1"))) == {
        "body": {"tag": "Init", "val": {"actorId": "a1", "connectionId": "c1"}}}
    assert json.loads(enc.encode_to_client("json", ActionResponse(7, {"x": b"\x01"}))) == {
        "body": {"tag": "ActionResponse", "val": {"id": ["$BigInt", "7"], "output": {"x": ["$Uint8Array", "AQ=="]}}}}
    assert json.loads(enc.encode_to_client("json", Event("tick", [1, "two"]))) == {
        "body": {"tag": "Event", "val": {"name": "tick", "args": [1, "two"]}}}
    assert json.loads(enc.encode_to_client("json", Error("user", "bad", "msg", {"a": 1}, 3))) == {
        "body": {"tag": "Error", "val": {"group": "user", "code": "bad", "message": "msg", "metadata": {"a": 1},
                                         "actionId": ["$BigInt", "3"]}}}
    assert json.loads(enc.encode_to_client("json", Error("actor", "not_found", "m")))["body"]["val"]["actionId"] is None


def test_json_decodes_what_rivetkit_sends():
    sent = '{"body":{"tag":"ActionRequest","val":{"id":["$BigInt","12"],"name":"inc","args":[1,["$Uint8Array","AQ=="]]}}}'
    assert enc.decode_to_server("json", sent) == ActionRequest(12, "inc", [1, b"\x01"])
    plain_id = '{"body":{"tag":"ActionRequest","val":{"id":4,"name":"inc","args":[]}}}'
    assert enc.decode_to_server("json", plain_id.encode()) == ActionRequest(4, "inc", [])
    sub = '{"body":{"tag":"SubscriptionRequest","val":{"eventName":"tick","subscribe":false}}}'
    assert enc.decode_to_server("json", sub) == SubscriptionRequest("tick", False)


@pytest.mark.parametrize("encoding", ["json", "msgpack"])
def test_round_trip_of_every_message(encoding):
    for msg in (Init("a", "c"), ActionResponse(2**63, [b"x", 2**62, -1, 1.25, None, {"k": [True]}]),
                Event("e", ["$dollar", ["$a", 1]]), Error("g", "c", "m", None, None), Error("g", "c", "m", [1], 5)):
        assert enc.decode_to_client(encoding, enc.encode_to_client(encoding, msg)) == msg
    for msg in (ActionRequest(1, "act", [b"\x00", {"a": 2**60}]), SubscriptionRequest("e", True)):
        assert enc.decode_to_server(encoding, enc.encode_to_server(encoding, msg)) == msg


def test_msgpack_is_binary_with_native_ints_and_bin():
    data = enc.encode_to_client("msgpack", ActionResponse(3, b"\x01"))
    assert isinstance(data, bytes)
    assert msgpack.unpackb(data) == {"body": {"tag": "ActionResponse", "val": {"id": 3, "output": b"\x01"}}}


@pytest.mark.parametrize("encoding,data", [
    ("json", ""),
    ("json", "{"),
    ("json", "[]"),
    ("json", '"hello"'),
    ("json", '{"body": 5}'),
    ("json", '{"body": {"tag": "Nope", "val": {}}}'),
    ("json", '{"body": {"tag": "ActionRequest", "val": {"id": -1, "name": "a", "args": []}}}'),
    ("json", '{"body": {"tag": "ActionRequest", "val": {"id": 1.5, "name": "a", "args": []}}}'),
    ("json", '{"body": {"tag": "SubscriptionRequest", "val": {"eventName": 1, "subscribe": true}}}'),
    ("json", b"\xff\xfe"),
    ("json", "[" * 5000 + "]" * 5000),  # nested too deep
    ("msgpack", b""),
    ("msgpack", b"\xc1"),
    ("msgpack", msgpack.packb({"body": {"tag": "ActionRequest", "val": {"id": 1, "name": "a", "args": [],
                                                                          b"bin": 1}}})),
    ("msgpack", msgpack.packb(msgpack.ExtType(5, b"x"))),
])
def test_bad_messages_are_invalid_requests(encoding, data):
    with pytest.raises(InvalidRequest):
        enc.decode_to_server(encoding, data)


def test_bad_args_keep_the_action_id():
    with pytest.raises(InvalidRequest) as info:
        enc.decode_to_server("json", '{"body":{"tag":"ActionRequest","val":{"id":9,"name":"a","args":5}}}')
    assert info.value.action_id == 9


def test_size_limits():
    big = "x" * (64 * 1024 + 1)
    with pytest.raises(IncomingTooLong):
        enc.decode_to_server("json", json.dumps({"body": {"tag": "Event", "val": {"name": big}}}))
    with pytest.raises(IncomingTooLong):
        enc.decode_action_request("msgpack", msgpack.packb({"args": [big]}))
    with pytest.raises(OutgoingTooLong):
        enc.encode_to_client("json", ActionResponse(1, "y" * (1024 * 1024)))
    with pytest.raises(OutgoingTooLong):
        enc.encode_action_response("msgpack", b"z" * (1024 * 1024 + 1))
    # just under the limits passes
    assert enc.decode_action_request("json", json.dumps({"args": ["x" * 60000]})) == ["x" * 60000]


def test_unknown_encoding():
    with pytest.raises(UnsupportedEncoding):
        enc.check_encoding("cbor")
    assert enc.check_encoding("msgpack") == "msgpack"


@pytest.mark.parametrize("body,ok", [
    ('{"args": [1, "a"]}', [1, "a"]),
    ('{"args": []}', []),
    ('{"args": 5}', None),
    ('"hello"', None),
    ('{"argz": []}', None),
    ("", None),
    ("null", None),
])
def test_action_bodies(body, ok):
    if ok is None:
        with pytest.raises(InvalidRequest):
            enc.decode_action_request("json", body)
    else:
        assert enc.decode_action_request("json", body) == ok


@pytest.mark.parametrize("parts,text", [
    ((), "/"),
    (("a",), "a"),
    (("a", "b"), "a/b"),
    (("with/slash", "back\\slash"), "with\\/slash/back\\\\slash"),
    (("",), "\\0"),
    (("", "x", ""), "\\0/x/\\0"),
])
def test_rivetkit_key_strings(parts, text):
    assert enc.serialize_key(parts) == text
    assert enc.deserialize_key(text) == parts


@pytest.mark.parametrize("urlsafe", [False, True])
def test_cbor_input_round_trip(urlsafe):
    value = {"start": 5, "blob": b"\xfb\xff", "big": 2**60, "list": ["$x", 1], "n": None}
    text = enc.encode_input(value, urlsafe=urlsafe)
    if urlsafe:
        assert "=" not in text and "+" not in text and "/" not in text
    assert enc.decode_input(text, urlsafe=urlsafe) == value
    with pytest.raises(InvalidRequest):
        enc.decode_input("***", urlsafe=urlsafe)
    with pytest.raises(InvalidRequest):
        enc.decode_input(enc.encode_input(1, urlsafe)[:-1] + "@@", urlsafe=urlsafe)
