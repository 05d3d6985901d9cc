"""Crash consistency: SIGKILL a real server at random points and check every promise of API.md §5.

    python -m tests.reliability.crash_harness [--kills N] [--seed S]      # a long run

Each round: start ``server_main.py`` on the same state directory (the restart), verify what the
previous round acknowledged, drive a random mix of operations from several client workers for a
random time, then ``SIGKILL`` the server. Every acknowledgement is recorded with the client's
clock. After the last round the server is started once more, every acknowledged schedule is
given time to come due, and the firings are checked for missing and duplicate ones.

Checks after every restart (``Violation`` names the first one that fails):

* the state decodes (the ``snapshot`` action answers);
* every acknowledged ``durable`` write (``save_state(immediate=True)``) is present;
* every acknowledged KV batch is complete, and no batch is half-applied (acknowledged or not);
* the state lag: every throttled write acknowledged before ``kill - state_save_interval - slack``
  is present (``slack`` is explained in README.md);
* no schedule fired more than once; at the end, every acknowledged schedule fired exactly once.

``RIVET_CRASH_SEED`` replays a run; the seed is printed either way.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

SAVE_INTERVAL = float(os.environ.get("RIVET_CRASH_SAVE_INTERVAL", "0.2"))
SLACK = float(os.environ.get("RIVET_CRASH_SLACK", "0.5"))
"""What the lag bound allows beyond ``state_save_interval``: the write already in progress when
the change arrived (the throttle starts the next one right after it), the change's own write
(an fsync), and event-loop delay on a loaded test machine. Measured lags are reported."""

ACTORS = ("a", "b")
WORKERS_PER_ACTOR = 3
BATCH_KEYS = 32


class Violation(AssertionError):
    pass


@dataclass
class Stats:
    seed: int
    kills: int = 0
    restarts: int = 0
    ops_sent: int = 0
    acks: int = 0
    durable_verified: int = 0
    throttled_checked: int = 0
    batches_verified: int = 0
    batches_unacked_seen: int = 0
    schedules_acked: int = 0
    schedules_fired_once: int = 0
    max_lag: float = 0.0
    starved: int = 0
    lost_throttled: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"crash: seed={self.seed} kills={self.kills} restarts={self.restarts} ops={self.ops_sent} "
            f"acks={self.acks} durable_verified={self.durable_verified} "
            f"throttled_checked={self.throttled_checked} lost_unflushed={self.lost_throttled} "
            f"max_lost_age={self.max_lag:.3f}s (save must start within {SAVE_INTERVAL}+{SLACK}s; "
            f"excused as server starved of CPU: {self.starved}) "
            f"kv_batches_verified={self.batches_verified} unacked_batches_all_or_nothing="
            f"{self.batches_unacked_seen} schedules_acked={self.schedules_acked} "
            f"schedules_fired_exactly_once={self.schedules_fired_once} time={self.seconds:.1f}s"
        )


@dataclass
class Book:
    """Everything the client knows: sent, acknowledged (with the client's clock)."""

    throttled: dict[str, list[tuple[int, float]]] = field(default_factory=dict)  # worker → [(seq, ack_t)]
    durable: dict[str, int] = field(default_factory=dict)  # worker → highest acknowledged seq
    sent_seq: dict[str, int] = field(default_factory=dict)  # worker → highest seq ever sent
    batches_acked: dict[str, set[int]] = field(default_factory=dict)  # actor → batch ids
    batches_sent: dict[str, set[int]] = field(default_factory=dict)
    schedules: dict[str, dict[str, float]] = field(default_factory=dict)  # actor → tag → run_at (acked)
    schedules_sent: dict[str, set[str]] = field(default_factory=dict)
    writes: list[tuple[float, float | None]] = field(default_factory=list)  # (start, end) of durable calls
    ack_times: list[float] = field(default_factory=list)  # every acknowledgement of the round
    actor_ids: dict[str, str] = field(default_factory=dict)


class ServerProcess:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.applies: list[tuple[str, bool, float, float]] = []  # of the last killed process

    def start(self, timeout: float = 30.0) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", RIVET_CRASH_SAVE_INTERVAL=str(SAVE_INTERVAL),
                   RIVET_CRASH_APPLY_LOG="1")
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "server_main.py"), str(self.state_dir)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=str(ROOT),
        )
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # bounded: the process prints READY or exits
        if not line.startswith("READY ") or time.monotonic() > deadline:
            self.proc.kill()
            _, err = self.proc.communicate(timeout=10)
            raise Violation(f"the server did not start after a crash: {line!r}\n{err[-3000:]}")
        self.url = line.split()[1]

    def kill(self) -> float:
        assert self.proc is not None
        t = time.time()
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc.stdout.close()  # type: ignore[union-attr]
        self.applies = []
        for line in self.proc.stderr.read().splitlines():  # type: ignore[union-attr]
            if line.startswith("APPLY "):
                _, actor_id, record, start, end = line.split()
                self.applies.append((actor_id, record == "1", float(start), float(end)))
        self.proc.stderr.close()  # type: ignore[union-attr]
        return t

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc is not None:
            for f in (self.proc.stdout, self.proc.stderr):
                if f is not None:
                    f.close()


async def _worker(client: Any, actor: str, worker: str, rng: random.Random, book: Book, stop: asyncio.Event,
                  counters: dict[str, int]) -> None:
    h = client.get_or_create("crash", actor)
    while not stop.is_set():
        op = rng.random()
        try:
            if op < 0.5:
                seq = book.sent_seq.get(worker, 0) + 1
                book.sent_seq[worker] = seq
                counters["sent"] += 1
                await h.bump(worker, seq)
                book.throttled.setdefault(worker, []).append((seq, time.time()))
            elif op < 0.7:
                seq = book.sent_seq.get(worker, 0) + 1
                book.sent_seq[worker] = seq
                counters["sent"] += 1
                entry = [time.time(), None]
                book.writes.append(entry)  # type: ignore[arg-type]
                await h.durable(worker, seq)
                entry[1] = time.time()
                book.durable[worker] = max(book.durable.get(worker, 0), seq)
            elif op < 0.85:
                bid = counters["batch"] = counters["batch"] + 1
                book.batches_sent.setdefault(actor, set()).add(bid)
                counters["sent"] += 1
                await h.batch(bid, BATCH_KEYS)
                book.batches_acked.setdefault(actor, set()).add(bid)
            else:
                counters["tag"] += 1
                tag = f"{worker}-{counters['tag']}"
                delay = rng.uniform(0.0, 1.5)
                book.schedules_sent.setdefault(actor, set()).add(tag)
                counters["sent"] += 1
                run_at = time.time() + delay
                await h.sched(tag, delay)
                book.schedules.setdefault(actor, {})[tag] = run_at
            counters["acks"] += 1
            book.ack_times.append(time.time())
        except Exception:  # noqa: BLE001 - the server died under this call: not acknowledged
            if stop.is_set():
                return
            await asyncio.sleep(0.01)


async def _drive(url: str, rng: random.Random, book: Book, seconds: float, kill: Any,
                 counters: dict[str, int]) -> float:
    from runtime import Client

    stop = asyncio.Event()
    async with Client(url, encoding=rng.choice(["json", "msgpack"])) as client:
        tasks = [
            asyncio.ensure_future(_worker(client, a, f"{a}{i}", random.Random(rng.random()), book, stop, counters))
            for a in ACTORS for i in range(WORKERS_PER_ACTOR)
        ]
        await asyncio.sleep(seconds)
        kill_time = kill()
        stop.set()
        await asyncio.wait(tasks, timeout=30)
        for t in tasks:
            t.cancel()
    return kill_time


async def _snapshot(url: str, book: Book) -> dict[str, dict[str, Any]]:
    from runtime import Client

    out = {}
    async with Client(url, encoding="msgpack") as client:
        for a in ACTORS:
            h = client.get_or_create("crash", a)
            book.actor_ids[a] = await h.resolve()
            out[a] = await h.snapshot()
    return out


def _check_throttled(a: str, state: dict[str, Any], book: Book, applies: list[tuple[str, bool, float, float]],
                     kill_time: float, stats: Stats) -> None:
    """A throttled write acknowledged at ``t`` (so applied before ``t``) is lost only if

    * no flush of the actor record started after ``t`` completed before the kill (else: a bug,
      whatever the timing), and
    * no such flush even started within ``state_save_interval + slack`` of ``t`` - which is only
      excused when the server was not running then (starved of CPU: no acknowledgement at all
      came from it after that point). The server logs each completed apply (server_main.py)."""
    actor_id = book.actor_ids.get(a)
    record_starts = sorted(st for aid, rec, st, _ in applies if aid == actor_id and rec)
    for w, acks in book.throttled.items():
        if not w.startswith(a) or not acks:
            continue
        got = state["last"].get(w, 0)
        if got > book.sent_seq.get(w, 0):
            raise Violation(f"actor {a}: throttled {w}={got} was never sent")
        stats.throttled_checked += 1
        lost = [(seq, t) for seq, t in acks if seq > got]
        if not lost:
            continue
        seq, t = min(lost)
        stats.lost_throttled += len(lost)
        stats.max_lag = max(stats.max_lag, kill_time - t)
        if any(st >= t for st in record_starts):
            raise Violation(f"actor {a}: throttled write {w}={seq} (acknowledged {kill_time - t:.3f} s before "
                            f"the kill) is lost although a flush of the state started after it and completed")
        bound = t + SAVE_INTERVAL + SLACK
        if bound < kill_time:
            if any(x > bound for x in book.ack_times):
                raise Violation(
                    f"actor {a}: throttled write {w}={seq} acknowledged {kill_time - t:.3f} s before the kill "
                    f"is lost: no save started within {SAVE_INTERVAL}+{SLACK} s although the server kept "
                    f"answering (stored {got})"
                )
            stats.starved += 1


def _verify(snap: dict[str, dict[str, Any]], book: Book, kill_time: float | None, stats: Stats,
            applies: list[tuple[str, bool, float, float]] = ()) -> None:  # type: ignore[assignment]
    for a in ACTORS:
        s = snap[a]
        state = s["state"]
        if not isinstance(state, dict) or set(state) != {"last", "durable", "fired"}:
            raise Violation(f"actor {a}: the state does not decode to its shape: {state!r}")
        # durable writes
        for w, seq in book.durable.items():
            if not w.startswith(a):
                continue
            got = state["durable"].get(w, 0)
            if got < seq:
                raise Violation(f"actor {a}: acknowledged durable write {w}={seq} lost (stored {got})")
            if got > book.sent_seq.get(w, 0):
                raise Violation(f"actor {a}: durable {w}={got} was never sent")
            stats.durable_verified += 1
        # throttled writes and the lag bound
        if kill_time is not None:
            _check_throttled(a, state, book, applies, kill_time, stats)
        # KV batches: all or nothing; acknowledged ones complete
        batches = s["batches"]
        for bid_text, count in batches.items():
            if count != BATCH_KEYS:
                raise Violation(f"actor {a}: KV batch {bid_text} is half-applied ({count}/{BATCH_KEYS} keys)")
        for bid in book.batches_acked.get(a, ()):
            if batches.get(f"{bid:08d}") != BATCH_KEYS:
                raise Violation(f"actor {a}: acknowledged KV batch {bid} is missing")
            stats.batches_verified += 1
        stats.batches_unacked_seen += sum(
            1 for bid in book.batches_sent.get(a, set()) - book.batches_acked.get(a, set())
            if f"{bid:08d}" in batches
        )
        # schedules: never twice; acknowledged ones pending or fired
        fired = state["fired"]
        for tag, n in fired.items():
            if n != 1:
                raise Violation(f"actor {a}: schedule {tag} fired {n} times")
            if tag not in book.schedules_sent.get(a, set()):
                raise Violation(f"actor {a}: schedule {tag} fired but was never sent")
        pending = set(s["pending"])
        for tag in book.schedules.get(a, {}):
            if tag not in fired and tag not in pending:
                raise Violation(f"actor {a}: acknowledged schedule {tag} is neither pending nor fired")
            if tag in fired and tag in pending:
                raise Violation(f"actor {a}: schedule {tag} fired and is still pending")


def run(state_dir: Path, kills: int = 20, seed: int | None = None, out: Any = None) -> Stats:
    if seed is None:
        env_seed = os.environ.get("RIVET_CRASH_SEED")
        seed = int(env_seed) if env_seed else random.SystemRandom().randrange(2**32)
    out = out or sys.stdout
    print(f"crash: seed={seed} (replay with RIVET_CRASH_SEED={seed})", file=out, flush=True)
    rng = random.Random(seed)
    stats = Stats(seed)
    book = Book()
    counters = {"sent": 0, "acks": 0, "batch": 0, "tag": 0}
    server = ServerProcess(state_dir)
    started = time.monotonic()
    kill_time: float | None = None
    try:
        for _ in range(kills):
            server.start()
            if stats.kills:
                stats.restarts += 1
                _verify(asyncio.run(_snapshot(server.url, book)), book, kill_time, stats, server.applies)
            seconds = rng.uniform(0.2, 1.0)
            book.writes.clear()
            book.ack_times.clear()
            book.throttled.clear()  # judged against the previous kill; a lost one may stay lost
            kill_time = asyncio.run(_drive(server.url, rng, book, seconds, server.kill, counters))
            stats.kills += 1
        # the last restart: let every acknowledged schedule come due, then exactly once
        server.start()
        stats.restarts += 1
        _verify(asyncio.run(_snapshot(server.url, book)), book, kill_time, stats, server.applies)
        last_due = max((t for tags in book.schedules.values() for t in tags.values()), default=0.0)
        deadline = time.monotonic() + max(0.0, last_due - time.time()) + 15.0
        while True:
            snap = asyncio.run(_snapshot(server.url, book))
            if all(tag in snap[a]["state"]["fired"] for a in ACTORS for tag in book.schedules.get(a, {})):
                break
            if time.monotonic() > deadline:
                missing = [t for a in ACTORS for t in book.schedules.get(a, {}) if t not in snap[a]["state"]["fired"]]
                raise Violation(f"acknowledged schedules never fired: {missing[:10]} ({len(missing)} in all)")
            time.sleep(0.2)
        _verify(snap, book, None, stats)
        stats.schedules_acked = sum(len(t) for t in book.schedules.values())
        stats.schedules_fired_once = sum(
            1 for a in ACTORS for tag in book.schedules.get(a, {}) if snap[a]["state"]["fired"].get(tag) == 1
        )
    except Violation as exc:
        raise Violation(f"{exc} (seed={seed}; replay with RIVET_CRASH_SEED={seed})") from None
    finally:
        server.stop()
        stats.ops_sent = counters["sent"]
        stats.acks = counters["acks"]
        stats.seconds = time.monotonic() - started
        print(stats.line(), file=out, flush=True)
    return stats


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=int(os.environ.get("RIVET_CRASH_KILLS", "100")))
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--state-dir", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(args.state_dir or tmp) / "state", kills=args.kills, seed=args.seed)


if __name__ == "__main__":
    main()
