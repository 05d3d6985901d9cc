"""Prometheus metrics, one registry per runtime so two runtimes in one process never mix counts."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

ACTIVITY_KINDS = ("action", "request", "keep_awake", "raw_socket", "conn", "run", "wait_until")


class RuntimeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.active = Gauge("rivet_actor_active", "Awake actor instances", ["actor_name"], registry=r)
        self.actions = Counter(
            "rivet_actor_actions", "Action calls by outcome (ok, error)", ["actor_name", "outcome"], registry=r
        )
        self.user_tasks = Gauge(
            "rivet_actor_user_tasks_active",
            "Activity regions that keep an actor awake, by kind",
            ["actor_name", "kind"],
            registry=r,
        )
        self.mutations = Counter(
            "rivet_actor_state_mutations",
            "State mutations by reason (mutate: in place, assign: c.state = ...)",
            ["actor_name", "reason"],
            registry=r,
        )
        self.saves = Counter("rivet_actor_saves", "Flushes written to the driver", ["actor_name"], registry=r)
        self.save_seconds = Histogram(
            "rivet_actor_save_seconds", "Duration of one flush", ["actor_name"], registry=r
        )
        self.lifecycle = Counter(
            "rivet_actor_lifecycle_events",
            "Actor lifecycle transitions (create, wake, sleep, destroy)",
            ["actor_name", "event"],
            registry=r,
        )

    def text(self) -> str:
        return generate_latest(self.registry).decode("utf-8")


class ActorMetrics:
    """The label-bound children for one actor name (``c.metrics``); binding once keeps the hot
    path to a plain method call."""

    def __init__(self, m: RuntimeMetrics, name: str) -> None:
        self.runtime = m
        self.active = m.active.labels(name)
        self.actions_ok = m.actions.labels(name, "ok")
        self.actions_error = m.actions.labels(name, "error")
        self.tasks = {k: m.user_tasks.labels(name, k) for k in ACTIVITY_KINDS}
        self.mutate = m.mutations.labels(name, "mutate")
        self.assign = m.mutations.labels(name, "assign")
        self.saves = m.saves.labels(name)
        self.save_seconds = m.save_seconds.labels(name)
        self._name = name

    def lifecycle(self, event: str) -> None:
        self.runtime.lifecycle.labels(self._name, event).inc()
