"""The error-code artifacts: rendering, comparing with a directory, and applying the difference.

Pure file logic, no printing: :func:`plan` looks at a directory and says what ``gen`` would do,
:func:`apply` does it. An artifact is ``{group}.{code}.json`` holding
``{"code": ..., "group": ..., "message": ...}`` as rendered by :func:`render` (sorted keys,
2-space indent, trailing newline, UTF-8), so regeneration is byte-stable.

A file is *owned* (and may be removed when its error is no longer declared) only if it is a
regular file named ``{group}.{code}.json`` whose content is a JSON object with exactly the keys
``code``, ``group`` and ``message`` (all strings) matching its name. Everything else in the
directory (``notes.json``, READMEs, other tools' files) is never touched.
"""

from __future__ import annotations

import errno
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ARTIFACT_KEYS", "Artifact", "Change", "Plan", "artifacts_for", "render", "plan", "apply"]

ARTIFACT_KEYS = frozenset({"code", "group", "message"})
_PART_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_MAX_OWNED_SIZE = 1 << 20  # an artifact is a few hundred bytes; never parse anything big


@dataclass(frozen=True)
class Artifact:
    group: str
    code: str
    message: str

    @property
    def name(self) -> str:
        return f"{self.group}.{self.code}.json"

    def data(self) -> dict[str, str]:
        return {"code": self.code, "group": self.group, "message": self.message}


@dataclass(frozen=True)
class Change:
    name: str
    kind: str  # "create" | "update" | "remove"
    detail: str = ""
    content: bytes | None = None  # what to write; None for "remove"


@dataclass
class Plan:
    out_dir: Path
    changes: list[Change] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)

    def of_kind(self, kind: str) -> list[Change]:
        return [c for c in self.changes if c.kind == kind]

    @property
    def drift(self) -> bool:
        return bool(self.changes)


def render(data: Mapping[str, str]) -> bytes:
    """The exact bytes of an artifact file."""
    return (json.dumps(dict(data), indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def artifacts_for(entries: Iterable[Any]) -> list[Artifact]:
    """Artifacts for catalogue entries (anything with ``group``, ``code``, ``message``), by file name.

    ``ValueError`` if a group or code cannot safely be part of a file name (only letters, digits,
    ``_`` and ``-`` are allowed; a dot would make ``{group}.{code}.json`` ambiguous).
    """
    result = []
    for entry in entries:
        for part in ("group", "code"):
            value = getattr(entry, part)
            if not isinstance(value, str) or not _PART_RE.match(value):
                raise ValueError(
                    f"cannot write an artifact for error {entry.group}.{entry.code}: its {part} {value!r} "
                    "may only contain letters, digits, '_' and '-'"
                )
        result.append(Artifact(entry.group, entry.code, str(entry.message)))
    return sorted(result, key=lambda a: a.name)


def _owned_artifact(path: Path) -> dict[str, str] | None:
    """The content of ``path`` if it is an artifact this tool owns, else None."""
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > _MAX_OWNED_SIZE:
            return None
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if not isinstance(data, dict) or set(data) != ARTIFACT_KEYS:
        return None
    if not all(isinstance(v, str) for v in data.values()):
        return None
    if path.name != f"{data['group']}.{data['code']}.json":
        return None
    return data


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe_update(current: bytes, wanted: Artifact) -> str:
    try:
        data = json.loads(current.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "not valid JSON"
    if not isinstance(data, dict) or set(data) != ARTIFACT_KEYS:
        return "keys differ from code/group/message"
    if data.get("group") != wanted.group or data.get("code") != wanted.code:
        return "group or code does not match the file name"
    if data.get("message") != wanted.message:
        return f"message was {_short(str(data.get('message')))!r}"
    return "formatting differs"


def plan(artifacts: Iterable[Artifact], out_dir: Path) -> Plan:
    """Compare ``out_dir`` with the wanted artifacts. Reads only; raises ``OSError`` if unreadable.

    ``NotADirectoryError`` if ``out_dir`` exists and is not a directory.
    """
    result = Plan(out_dir=out_dir)
    wanted = {a.name: a for a in artifacts}
    if out_dir.exists() and not out_dir.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(out_dir))
    for name, artifact in sorted(wanted.items()):
        path = out_dir / name
        content = render(artifact.data())
        if not path.exists() and not path.is_symlink():
            result.changes.append(Change(name, "create", "", content))
            continue
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
        current = path.read_bytes()
        if current == content:
            result.unchanged.append(name)
        else:
            result.changes.append(Change(name, "update", _describe_update(current, artifact), content))
    if out_dir.is_dir():
        for path in sorted(out_dir.iterdir()):
            name = path.name
            if name in wanted or not name.endswith(".json") or "." not in name[: -len(".json")]:
                continue
            data = _owned_artifact(path)
            if data is not None:
                result.changes.append(
                    Change(name, "remove", f"{data['group']}.{data['code']} is no longer declared")
                )
    return result


def _write_atomic(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "xb") as fh:  # honours the umask, unlike mkstemp's 0600
            fh.write(content)
        os.replace(tmp, path)
    except BaseException:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise


def apply(p: Plan) -> None:
    """Carry out a plan: create the directory if needed, write and remove files. ``OSError`` on failure."""
    p.out_dir.mkdir(parents=True, exist_ok=True)
    for change in p.changes:
        path = p.out_dir / change.name
        if change.kind == "remove":
            path.unlink()
        else:
            assert change.content is not None
            _write_atomic(path, change.content)
