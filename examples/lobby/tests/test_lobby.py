"""Many players at once, over a real server (networked client, one WebSocket per player)."""

import asyncio

import pytest
from lobby_app.lobby import MAX_PLAYERS

from runtime import ActorError, Client
from runtime.testing import eventually

pytestmark = pytest.mark.anyio

PLAYERS = 40


@pytest.fixture
async def client(rivet_registry, make_rivet_driver):
    async with rivet_registry.serve(host="127.0.0.1", port=0, driver=make_rivet_driver()) as server:
        async with Client(server.url, encoding="json") as client:
            yield client


async def test_many_players_join_get_ready_and_all_see_one_game_start(client):
    lobby = client.get_or_create("lobby", "test-big")
    names = [f"player{i:02d}" for i in range(PLAYERS)]
    conns = [lobby.connect(params={"name": n}) for n in names]
    started = {n: [] for n in names}
    try:
        await asyncio.gather(*(conn.open() for conn in conns))
        for n, conn in zip(names, conns, strict=True):
            conn.on("game_started", started[n].append)
        roster = await lobby.get_roster()
        assert [p["name"] for p in roster] == names and not any(p["ready"] for p in roster)

        results = await asyncio.gather(*(conn.set_ready() for conn in conns))
        rounds = [r for r in results if r["round"] is not None]
        assert rounds == [{"round": 1, "players": names}]  # exactly one call started it

        def everyone_saw_it():
            assert all(events == [{"round": 1, "players": names}] for events in started.values())

        await eventually(everyone_saw_it, timeout=10)
        assert not any(p["ready"] for p in await lobby.get_roster())  # readiness resets
    finally:
        await asyncio.gather(*(conn.dispose() for conn in conns))
    assert await lobby.get_rounds() == [{"round": 1, "players": names}]


async def test_roster_updates_reach_everyone(client):
    lobby = client.get_or_create("lobby", "test-roster")
    seen = []
    async with lobby.connect(params={"name": "ada"}) as ada:
        ada.on("roster", seen.append)
        await ada.get_roster()
        async with lobby.connect(params={"name": "bob"}) as bob:
            await bob.set_ready()

            def saw_bob_ready():
                assert seen[-1] == [{"name": "ada", "ready": False}, {"name": "bob", "ready": True}]

            await eventually(saw_bob_ready)

        def saw_bob_leave():
            assert seen[-1] == [{"name": "ada", "ready": False}]

        await eventually(saw_bob_leave)


async def test_duplicate_names_and_a_full_lobby_are_refused(client):
    lobby = client.get_or_create("lobby", "test-full")
    conns = [lobby.connect(params={"name": f"p{i}"}) for i in range(MAX_PLAYERS)]
    try:
        await asyncio.gather(*(conn.open() for conn in conns))
        for params, code in (({"name": "p0"}, "name_taken"), ({"name": "late"}, "lobby_full")):
            with pytest.raises(ActorError) as info:
                async with lobby.connect(params=params) as extra:
                    await extra.get_roster()
            assert (info.value.group, info.value.code) == ("user", code)
    finally:
        await asyncio.gather(*(conn.dispose() for conn in conns))


async def test_a_one_off_call_cannot_play(client):
    with pytest.raises(ActorError) as info:
        await client.get_or_create("lobby", "test-call").set_ready()
    assert info.value.code == "not_a_player"
