"""Wire encodings of RivetKit's client protocol (v4): ``json`` and ``msgpack``.

Shapes (the same for both encodings)::

    socket, server → client   {"body": {"tag": "Init",           "val": {"actorId", "connectionId"}}}
                              {"body": {"tag": "Error",          "val": {"group", "code", "message",
                                                                         "metadata", "actionId"}}}
                              {"body": {"tag": "ActionResponse", "val": {"id", "output"}}}
                              {"body": {"tag": "Event",          "val": {"name", "args"}}}
    socket, client → server   {"body": {"tag": "ActionRequest",       "val": {"id", "name", "args"}}}
                              {"body": {"tag": "SubscriptionRequest", "val": {"eventName", "subscribe"}}}
    HTTP action               request {"args": [...]}  →  response {"output": ...}
    HTTP error                {"group", "code", "message", "metadata"}

JSON follows RivetKit's "JSON compat" rules so that its JavaScript client can read and write it:
bytes travel as ``["$Uint8Array", "<base64>"]``, integers outside JavaScript's safe range as
``["$BigInt", "<decimal>"]``, and a user's own two-element list whose first item is a string
starting with ``$`` gets one more ``$`` so it cannot be mistaken for a tag. The protocol's id
fields (``id``, ``actionId``) are unsigned 64-bit integers that RivetKit's client validates as
``bigint``, so in JSON they are always written as ``["$BigInt", "<n>"]``; either form is read.

msgpack carries the same maps with native integers and ``bin`` for bytes.

Limits: a message to decode larger than 64 KiB raises ``message.incoming_too_long``; an encoded
message larger than 1 MiB raises ``message.outgoing_too_long``. Anything undecodable or wrongly
shaped raises ``actor.invalid_request``; an unknown encoding ``protocol.unsupported_encoding``.
Decoded values are always plain data (see :mod:`runtime.protocol.plain`).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

import msgpack

from runtime.errors import IncomingTooLong, InvalidRequest, OutgoingTooLong, UnsupportedEncoding
from runtime.protocol.messages import (
    MAX_INCOMING_MESSAGE,
    MAX_OUTGOING_MESSAGE,
    ActionRequest,
    ActionResponse,
    Error,
    Event,
    Init,
    SubscriptionRequest,
    ToClient,
    ToServer,
)
from runtime.protocol.plain import INT_MAX, INT_MIN, MAX_DEPTH

JSON = "json"
MSGPACK = "msgpack"
ENCODINGS = (JSON, MSGPACK)

_SAFE_INT = 2**53 - 1
_UINT64_MAX = 2**64 - 1

_BIGINT = "$BigInt"
_UINT8ARRAY = "$Uint8Array"
_ARRAYBUFFER = "$ArrayBuffer"
_UNDEFINED = "$Undefined"
_SET = "$Set"

__all__ = [
    "ENCODINGS",
    "JSON",
    "MSGPACK",
    "check_encoding",
    "content_type",
    "decode_action_request",
    "decode_action_response",
    "decode_error",
    "decode_to_client",
    "decode_to_server",
    "deserialize_key",
    "dumps",
    "encode_action_request",
    "encode_action_response",
    "encode_error",
    "encode_input",
    "decode_input",
    "encode_to_client",
    "encode_to_server",
    "from_json_compat",
    "loads",
    "serialize_key",
    "to_json_compat",
]


def check_encoding(name: Any) -> str:
    """``name`` if it is a supported encoding, else ``protocol.unsupported_encoding``."""
    if name in ENCODINGS:
        return name  # type: ignore[no-any-return]
    raise UnsupportedEncoding(f"The encoding {str(name)[:64]!r} is not supported; use json or msgpack")


def content_type(encoding: str) -> str:
    return "application/json" if encoding == JSON else "application/x-msgpack"


# =============================================================================== JSON compat


def to_json_compat(value: Any, _depth: int = 0) -> Any:
    """A plain value → the JSON-compatible value RivetKit's client revives to the same thing."""
    t = type(value)
    if t is str or value is None or t is bool:
        return value
    if t is int:
        return value if -_SAFE_INT <= value <= _SAFE_INT else [_BIGINT, str(value)]
    if t is float:
        return value if math.isfinite(value) else None  # what JSON.stringify does with NaN/Infinity
    if _depth > MAX_DEPTH:
        raise TypeError(f"value nested deeper than {MAX_DEPTH} levels")
    if t is dict:
        return {k: to_json_compat(v, _depth + 1) for k, v in value.items()}
    if t is list or t is tuple:
        out = [to_json_compat(v, _depth + 1) for v in value]
        if len(out) == 2 and type(out[0]) is str and out[0].startswith("$"):
            out[0] = "$" + out[0]
        return out
    if isinstance(value, (bytes, bytearray, memoryview)):
        return [_UINT8ARRAY, base64.b64encode(bytes(value)).decode("ascii")]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return to_json_compat(int(value), _depth)
    if isinstance(value, float):
        return to_json_compat(float(value), _depth)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return to_json_compat(dict(value), _depth)
    if isinstance(value, (list, tuple)):
        return to_json_compat(list(value), _depth)
    raise TypeError(f"{type(value).__name__} is not plain data")


def _b64(text: Any) -> bytes:
    if type(text) is not str:
        raise InvalidRequest("a tagged binary value must carry a base64 string")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("a tagged binary value is not valid base64") from None


def from_json_compat(value: Any, _depth: int = 0) -> Any:
    """Revive a parsed JSON value: tags become bytes / big ints; the result is plain data."""
    t = type(value)
    if t is str or t is float or t is bool or value is None:
        return value
    if t is int:
        if value < INT_MIN or value > INT_MAX:
            raise InvalidRequest("an integer does not fit in 64 bits")
        return value
    if _depth > MAX_DEPTH:
        raise InvalidRequest(f"the message is nested deeper than {MAX_DEPTH} levels")
    if t is dict:
        return {k: from_json_compat(v, _depth + 1) for k, v in value.items()}
    if t is list:
        if len(value) == 2 and type(value[0]) is str and value[0].startswith("$"):
            tag, payload = value
            if tag == _BIGINT:
                if type(payload) is not str:
                    raise InvalidRequest("a $BigInt must carry a decimal string")
                try:
                    n = int(payload, 10)
                except ValueError:
                    raise InvalidRequest("a $BigInt must carry a decimal string") from None
                return from_json_compat(n, _depth)
            if tag == _UINT8ARRAY or tag == _ARRAYBUFFER:
                return _b64(payload)
            if tag == _UNDEFINED:
                return None
            if tag == _SET:
                if type(payload) is not list:
                    raise InvalidRequest("a $Set must carry a list")
                return [from_json_compat(v, _depth + 1) for v in payload]
            if tag.startswith("$$"):
                return [tag[1:], from_json_compat(payload, _depth + 1)]
            raise InvalidRequest(f"unknown JSON tag {tag[:32]!r}")
        return [from_json_compat(v, _depth + 1) for v in value]
    raise InvalidRequest(f"{t.__name__} is not plain data")


def _check_msgpack(value: Any, _depth: int = 0) -> Any:
    """msgpack decodes to plain types except ext types and bytes map keys: reject those."""
    t = type(value)
    if t is str or t is int or t is float or t is bool or t is bytes or value is None:
        return value
    if _depth > MAX_DEPTH:
        raise InvalidRequest(f"the message is nested deeper than {MAX_DEPTH} levels")
    if t is dict:
        for k, v in value.items():
            if type(k) is not str:
                raise InvalidRequest("map keys must be strings")
            _check_msgpack(v, _depth + 1)
        return value
    if t is list:
        for v in value:
            _check_msgpack(v, _depth + 1)
        return value
    raise InvalidRequest(f"{t.__name__} is not plain data")


# =============================================================================== generic values


def _size(data: bytes | bytearray | memoryview | str) -> int:
    if type(data) is str:
        # ASCII is the common case; only measure UTF-8 when it could matter
        return len(data) if data.isascii() else len(data.encode("utf-8", "surrogatepass"))
    return len(data)


def _check_outgoing(data: bytes | str) -> bytes | str:
    size = _size(data)
    if size > MAX_OUTGOING_MESSAGE:
        raise OutgoingTooLong(
            f"The outgoing message is {size} bytes; the limit is {MAX_OUTGOING_MESSAGE} bytes",
            metadata={"size": size, "limit": MAX_OUTGOING_MESSAGE},
        )
    return data


def _check_incoming(data: Any) -> None:
    if not isinstance(data, (bytes, bytearray, memoryview, str)):
        raise InvalidRequest("a message must be text or binary")
    size = _size(data) if isinstance(data, str) else len(data)
    if size > MAX_INCOMING_MESSAGE:
        raise IncomingTooLong(
            f"The incoming message is {size} bytes; the limit is {MAX_INCOMING_MESSAGE} bytes",
            metadata={"size": size, "limit": MAX_INCOMING_MESSAGE},
        )


def _dumps_raw(encoding: str, wire: Any) -> bytes | str:
    """``wire`` is already in the encoding's value space (JSON compat applied for json)."""
    if encoding == JSON:
        return json.dumps(wire, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return msgpack.packb(wire, use_bin_type=True)


def _loads_raw(encoding: str, data: bytes | bytearray | memoryview | str) -> Any:
    _check_incoming(data)
    try:
        if encoding == JSON:
            if not isinstance(data, str):
                data = bytes(data).decode("utf-8")
            if not data.strip():
                raise InvalidRequest("the body is empty")
            return from_json_compat(json.loads(data))
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not data:
            raise InvalidRequest("the body is empty")
        return _check_msgpack(msgpack.unpackb(bytes(data), raw=False, strict_map_key=False, timestamp=0))
    except InvalidRequest:
        raise
    except (ValueError, TypeError, RecursionError, msgpack.ExtraData, msgpack.FormatError,
            msgpack.StackError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the {encoding} body could not be decoded: {type(exc).__name__}") from None


def dumps(encoding: str, value: Any) -> bytes | str:
    """Encode a plain value (``json``: str, ``msgpack``: bytes), enforcing the outgoing limit."""
    wire = to_json_compat(value) if encoding == JSON else value
    return _check_outgoing(_dumps_raw(encoding, wire))


def loads(encoding: str, data: bytes | bytearray | memoryview | str) -> Any:
    """Decode to a plain value, enforcing the incoming limit."""
    return _loads_raw(encoding, data)


# =============================================================================== socket messages


def _wire_uint(encoding: str, n: int) -> Any:
    return [_BIGINT, str(n)] if encoding == JSON else n


def _read_uint(value: Any, what: str) -> int:
    if type(value) is not int or value < 0 or value > _UINT64_MAX:
        raise InvalidRequest(f"{what} must be an unsigned 64-bit integer")
    return value


def _wrap(tag: str, val: dict[str, Any]) -> dict[str, Any]:
    return {"body": {"tag": tag, "val": val}}


def _user(encoding: str, value: Any) -> Any:
    return to_json_compat(value) if encoding == JSON else value


def encode_to_client(encoding: str, msg: ToClient) -> bytes | str:
    if type(msg) is ActionResponse:
        wire = _wrap("ActionResponse", {"id": _wire_uint(encoding, msg.id), "output": _user(encoding, msg.output)})
    elif type(msg) is Event:
        wire = _wrap("Event", {"name": msg.name, "args": _user(encoding, list(msg.args))})
    elif type(msg) is Error:
        wire = _wrap("Error", {
            "group": msg.group,
            "code": msg.code,
            "message": msg.message,
            "metadata": _user(encoding, msg.metadata),
            "actionId": None if msg.action_id is None else _wire_uint(encoding, msg.action_id),
        })
    elif type(msg) is Init:
        wire = _wrap("Init", {"actorId": msg.actor_id, "connectionId": msg.connection_id})
    else:
        raise TypeError(f"not a message to the client: {msg!r}")
    return _check_outgoing(_dumps_raw(encoding, wire))


def encode_to_server(encoding: str, msg: ToServer) -> bytes | str:
    if type(msg) is ActionRequest:
        wire = _wrap("ActionRequest", {"id": _wire_uint(encoding, msg.id), "name": msg.name,
                                       "args": _user(encoding, list(msg.args))})
    elif type(msg) is SubscriptionRequest:
        wire = _wrap("SubscriptionRequest", {"eventName": msg.event_name, "subscribe": msg.subscribe})
    else:
        raise TypeError(f"not a message to the server: {msg!r}")
    return _check_outgoing(_dumps_raw(encoding, wire))


def _body(value: Any) -> tuple[str, dict[str, Any]]:
    if type(value) is not dict or type(value.get("body")) is not dict:
        raise InvalidRequest('a message must be {"body": {"tag": ..., "val": {...}}}')
    body = value["body"]
    tag, val = body.get("tag"), body.get("val")
    if type(tag) is not str or type(val) is not dict:
        raise InvalidRequest('a message must be {"body": {"tag": ..., "val": {...}}}')
    return tag, val


def decode_to_server(encoding: str, data: bytes | bytearray | memoryview | str) -> ToServer:
    """Decode a client → server socket message. A bad ``ActionRequest`` whose id could be read
    raises ``actor.invalid_request`` with ``exc.action_id`` set, so the reply can name it."""
    tag, val = _body(_loads_raw(encoding, data))
    if tag == "ActionRequest":
        action_id = _read_uint(val.get("id"), "ActionRequest.id")
        name, args = val.get("name"), val.get("args")
        if type(name) is not str or type(args) is not list:
            err = InvalidRequest("ActionRequest needs a string name and a list of args")
            err.action_id = action_id  # type: ignore[attr-defined]
            raise err
        return ActionRequest(action_id, name, args)
    if tag == "SubscriptionRequest":
        event, subscribe = val.get("eventName"), val.get("subscribe")
        if type(event) is not str or type(subscribe) is not bool:
            raise InvalidRequest("SubscriptionRequest needs a string eventName and a boolean subscribe")
        return SubscriptionRequest(event, subscribe)
    raise InvalidRequest(f"unknown message tag {tag[:64]!r}")


def decode_to_client(encoding: str, data: bytes | bytearray | memoryview | str) -> ToClient:
    """Decode a server → client socket message (used by clients). The incoming limit of the
    server does not apply here: the server already bounds what it sends to 1 MiB."""
    if _size(data) > MAX_OUTGOING_MESSAGE:
        raise OutgoingTooLong(f"The message is larger than {MAX_OUTGOING_MESSAGE} bytes")
    try:
        if encoding == JSON:
            text = data if isinstance(data, str) else bytes(data).decode("utf-8")
            value = from_json_compat(json.loads(text))
        else:
            raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
            value = _check_msgpack(msgpack.unpackb(raw, raw=False, strict_map_key=False, timestamp=0))
    except InvalidRequest:
        raise
    except (ValueError, TypeError, RecursionError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        raise InvalidRequest(f"the {encoding} message could not be decoded") from None
    tag, val = _body(value)
    if tag == "ActionResponse":
        return ActionResponse(_read_uint(val.get("id"), "ActionResponse.id"), val.get("output"))
    if tag == "Event":
        name, args = val.get("name"), val.get("args")
        if type(name) is not str or type(args) is not list:
            raise InvalidRequest("Event needs a string name and a list of args")
        return Event(name, args)
    if tag == "Error":
        action_id = val.get("actionId")
        return Error(
            str(val.get("group", "core")),
            str(val.get("code", "internal_error")),
            str(val.get("message", "")),
            val.get("metadata"),
            None if action_id is None else _read_uint(action_id, "Error.actionId"),
        )
    if tag == "Init":
        actor_id, conn_id = val.get("actorId"), val.get("connectionId")
        if type(actor_id) is not str or type(conn_id) is not str:
            raise InvalidRequest("Init needs string actorId and connectionId")
        return Init(actor_id, conn_id)
    raise InvalidRequest(f"unknown message tag {tag[:64]!r}")


# =============================================================================== HTTP bodies


def encode_action_request(encoding: str, args: list[Any]) -> bytes | str:
    return dumps(encoding, {"args": list(args)})


def decode_action_request(encoding: str, body: bytes | str) -> list[Any]:
    """``{"args": [...]}`` → the args list; anything else is ``actor.invalid_request``."""
    value = loads(encoding, body)
    if type(value) is not dict or "args" not in value:
        raise InvalidRequest('the action body must be {"args": [...]}')
    args = value["args"]
    if type(args) is not list:
        raise InvalidRequest(f'"args" must be a list, got {type(args).__name__}')
    return args


def encode_action_response(encoding: str, output: Any) -> bytes | str:
    return dumps(encoding, {"output": output})


def decode_action_response(encoding: str, body: bytes | str) -> Any:
    if _size(body) > MAX_OUTGOING_MESSAGE:
        raise OutgoingTooLong(f"The response is larger than {MAX_OUTGOING_MESSAGE} bytes")
    value = _loads_any(encoding, body)
    if type(value) is not dict or "output" not in value:
        raise InvalidRequest('an action response must be {"output": ...}')
    return value["output"]


def encode_error(encoding: str, wire: dict[str, Any]) -> bytes | str:
    """The four-key error body. Never fails: an unencodable metadata is dropped."""
    body = {"group": wire["group"], "code": wire["code"], "message": wire["message"],
            "metadata": wire.get("metadata")}
    try:
        return dumps(encoding, body)
    except Exception:  # noqa: BLE001 - metadata that cannot be sent must not hide the error
        body["metadata"] = None
        return _dumps_raw(encoding, to_json_compat(body) if encoding == JSON else body)


def decode_error(encoding: str, body: bytes | str) -> dict[str, Any]:
    value = _loads_any(encoding, body)
    if type(value) is not dict or type(value.get("group")) is not str or type(value.get("code")) is not str:
        raise InvalidRequest("not an error body")
    return {"group": value["group"], "code": value["code"], "message": str(value.get("message", "")),
            "metadata": value.get("metadata")}


def _loads_any(encoding: str, data: bytes | str) -> Any:
    """Decode without the incoming limit (responses are bounded by the sender's 1 MiB limit)."""
    try:
        if encoding == JSON:
            text = data if isinstance(data, str) else bytes(data).decode("utf-8")
            return from_json_compat(json.loads(text))
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        return _check_msgpack(msgpack.unpackb(raw, raw=False, strict_map_key=False, timestamp=0))
    except InvalidRequest:
        raise
    except (ValueError, TypeError, RecursionError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError):
        raise InvalidRequest(f"the {encoding} body could not be decoded") from None


# =============================================================================== RivetKit keys and input


def serialize_key(parts: tuple[str, ...] | list[str]) -> str:
    """RivetKit's key string: parts joined by ``/``; ``\\`` and ``/`` escaped with ``\\``; an
    empty part is ``\\0``; the empty key is ``/``."""
    if not parts:
        return "/"
    out = []
    for part in parts:
        if part == "":
            out.append("\\0")
        else:
            out.append(part.replace("\\", "\\\\").replace("/", "\\/"))
    return "/".join(out)


def deserialize_key(text: str | None) -> tuple[str, ...]:
    """The inverse of :func:`serialize_key` (same rules as RivetKit's ``deserializeActorKey``)."""
    if text is None or text == "/":
        return ()
    parts: list[str] = []
    current: list[str] = []
    escaping = False
    empty_marker = False
    for ch in text:
        if escaping:
            if ch == "0":
                empty_marker = True
            else:
                current.append(ch)
            escaping = False
        elif ch == "\\":
            escaping = True
        elif ch == "/":
            parts.append("" if empty_marker else "".join(current))
            empty_marker = False
            current = []
        else:
            current.append(ch)
    if escaping:
        parts.append("".join(current) + "\\")
    elif empty_marker:
        parts.append("")
    elif current or parts:
        parts.append("".join(current))
    return tuple(parts)


def encode_input(value: Any, urlsafe: bool = False) -> str:
    """Actor input as RivetKit sends it: CBOR of the JSON-compat value, base64 (``rvt-input``
    uses URL-safe base64 without padding; the ``/actors`` API standard base64)."""
    import cbor2

    raw = cbor2.dumps(to_json_compat(value))
    if urlsafe:
        return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    return base64.b64encode(raw).decode("ascii")


def decode_input(text: Any, urlsafe: bool = False) -> Any:
    """The inverse of :func:`encode_input`; ``actor.invalid_request`` when it is not that."""
    import cbor2

    if type(text) is not str:
        raise InvalidRequest("the actor input must be a base64 string of CBOR")
    if len(text) > 2 * MAX_INCOMING_MESSAGE:
        raise IncomingTooLong(f"The actor input is larger than {MAX_INCOMING_MESSAGE} bytes")
    try:
        if urlsafe:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        else:
            raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("the actor input is not valid base64") from None
    try:
        value = cbor2.loads(raw)
    except Exception:  # noqa: BLE001 - cbor2 raises several decoder error types
        raise InvalidRequest("the actor input is not valid CBOR") from None
    return _from_cbor(value)


def _from_cbor(value: Any, _depth: int = 0) -> Any:
    """A decoded CBOR value (of RivetKit's JSON-compat encoding) → plain data."""
    t = type(value)
    if t is str or t is float or t is bool or t is bytes or value is None:
        return value
    if t is int:
        return from_json_compat(value)
    if _depth > MAX_DEPTH:
        raise InvalidRequest(f"the input is nested deeper than {MAX_DEPTH} levels")
    if t is dict:
        out = {}
        for k, v in value.items():
            if type(k) is not str:
                raise InvalidRequest("map keys of the input must be strings")
            out[k] = _from_cbor(v, _depth + 1)
        return out
    if t is list or t is tuple:
        if len(value) == 2 and type(value[0]) is str and value[0].startswith("$"):
            tag, payload = value
            if tag == _SET:
                if not isinstance(payload, (list, tuple)):
                    raise InvalidRequest("a $Set must carry a list")
                return [_from_cbor(v, _depth + 1) for v in payload]
            if tag.startswith("$$"):
                return [tag[1:], _from_cbor(payload, _depth + 1)]
            if (tag == _UINT8ARRAY or tag == _ARRAYBUFFER) and type(payload) is bytes:
                return payload
            return from_json_compat([tag, payload], _depth)
        return [_from_cbor(v, _depth + 1) for v in value]
    raise InvalidRequest(f"{t.__name__} is not plain data")
