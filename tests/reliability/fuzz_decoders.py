"""A bounded atheris (libFuzzer) run over the wire decoders; not part of the default test run.

    python tests/reliability/fuzz_decoders.py [-runs=200000] [-max_total_time=60]

Every decoder gets the raw bytes in both encodings; anything but a result or a catalogued public
``RivetError`` is a crash that atheris reports with the input that caused it.
"""

from __future__ import annotations

import os
import sys

import atheris

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

with atheris.instrument_imports():
    from runtime.errors import RivetError, catalogue
    from runtime.protocol import encoding as enc

CATALOGUE = set(catalogue())
DECODERS = (enc.decode_to_server, enc.decode_to_client, enc.decode_action_request,
            enc.decode_action_response, enc.decode_error, enc.loads)


def one_input(data: bytes) -> None:
    for encoding in enc.ENCODINGS:
        for decode in DECODERS:
            try:
                decode(encoding, data)
            except RivetError as exc:
                if not exc.public or (exc.group, exc.code) not in CATALOGUE:
                    raise
    fdp = atheris.FuzzedDataProvider(data)
    text = fdp.ConsumeUnicodeNoSurrogates(len(data))
    for fn in (enc.decode_input, lambda t: enc.decode_input(t, urlsafe=True)):
        try:
            fn(text)
        except RivetError as exc:
            if (exc.group, exc.code) not in CATALOGUE:
                raise
    enc.deserialize_key(text)


if __name__ == "__main__":
    args = sys.argv + ([] if any(a.startswith("-runs") or a.startswith("-max_total_time") for a in sys.argv)
                       else ["-max_total_time=60"])
    atheris.Setup(args, one_input)
    atheris.Fuzz()
