"""Actor definition and registry validation (API.md §2, §5). No runtime is started here."""

from __future__ import annotations

import pytest

from runtime import ActorError, RivetError, UserError, actor, setup


def test_public_names_import() -> None:
    from runtime import Client  # noqa: F401

    assert issubclass(UserError, RivetError)
    assert issubclass(ActorError, RivetError)


def test_unknown_keyword_is_type_error() -> None:
    with pytest.raises(TypeError):
        actor(state={}, sleep_timout=1.0)
    with pytest.raises(TypeError):
        actor(bogus=True)


def test_state_and_create_state_together_is_type_error() -> None:
    with pytest.raises(TypeError):
        actor(state={"a": 1}, create_state=lambda c, input: {"a": 2})


def test_known_keywords_are_accepted() -> None:
    a = actor(
        state={"x": 1},
        vars={"v": 1},
        conn_state={"c": 1},
        sleep_timeout=1.0,
        no_sleep=False,
        sleep_grace_period=2.0,
        action_timeout=3.0,
        state_save_interval=0.5,
        create_vars_timeout=1.0,
        create_conn_state_timeout=1.0,
        on_before_connect_timeout=1.0,
        on_connect_timeout=1.0,
        max_inbox=8,
        max_schedules=10,
        can_hibernate_websocket=True,
    )
    assert a is not None
    b = actor(create_state=lambda c, input: {}, create_vars=lambda c: {}, create_conn_state=lambda c, p: {})
    assert b is not None


def test_duplicate_action_name_is_type_error() -> None:
    a = actor(state={})

    @a.action
    def ping(c):
        return 1

    with pytest.raises(TypeError):

        @a.action
        def ping(c):  # noqa: F811
            return 2

    with pytest.raises(TypeError):

        @a.action(name="ping")
        def other(c):
            return 3


def test_action_decorator_bare_and_called() -> None:
    a = actor()

    @a.action
    def one(c):
        return 1

    @a.action(name="two")
    def second(c):
        return 2

    @a.action()
    def three(c):
        return 3

    # the decorators hand the function back (usable bare or called)
    assert callable(one) and callable(second) and callable(three)


@pytest.mark.parametrize(
    "hook",
    [
        "on_create",
        "on_wake",
        "on_sleep",
        "on_destroy",
        "on_state_change",
        "on_before_connect",
        "on_connect",
        "on_disconnect",
        "on_before_action_response",
        "on_request",
        "on_websocket",
        "run",
    ],
)
def test_duplicate_hook_is_type_error(hook: str) -> None:
    a = actor(state={})

    def first(*args):
        return None

    def second(*args):
        return None

    getattr(a, hook)(first)
    with pytest.raises(TypeError):
        getattr(a, hook)(second)


def test_hook_decorator_called_form() -> None:
    a = actor(state={})

    @a.on_wake()
    def woke(c):
        return None

    with pytest.raises(TypeError):

        @a.on_wake
        def woke_again(c):
            return None


@pytest.mark.parametrize("name", ["Counter", "1abc", "a-b", "", "a b", "é", "_x", "a" * 65, "counter!"])
def test_setup_rejects_invalid_names(name: str) -> None:
    with pytest.raises(ValueError):
        setup(use={name: actor(state={})})


@pytest.mark.parametrize("name", ["a", "counter", "chat_room_2", "a" * 64])
def test_setup_accepts_valid_names(name: str) -> None:
    reg = setup(use={name: actor(state={})})
    assert reg is not None


def test_user_error_shape() -> None:
    e = UserError("nope", code="custom", metadata={"a": 1})
    assert (e.group, e.code, e.message, e.metadata) == ("user", "custom", "nope", {"a": 1})
    d = UserError("plain")
    assert (d.group, d.code) == ("user", "user_error")
