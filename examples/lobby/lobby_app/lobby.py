"""A game lobby: players join by connecting, mark themselves ready, and the game starts for all.

Each player is one connection (`lobby.connect(params={"name": "ada"})`) whose `conn.state` holds
the player's name and readiness. Every change of the roster is broadcast as a "roster" event; when
at least `MIN_PLAYERS` are connected and all of them are ready, the lobby starts a round: it
broadcasts "game_started" once, with the round number and the players, and resets readiness.
A full lobby refuses new players in `on_before_connect`. Rounds played are durable state.
"""

from __future__ import annotations

from runtime import UserError, actor

MIN_PLAYERS = 2
MAX_PLAYERS = 64


class LobbyFull(UserError):
    code = "lobby_full"
    message = "This lobby is full"


class NameTaken(UserError):
    code = "name_taken"
    message = "Another player in this lobby has that name"


def create_conn_state(c, params) -> dict:
    name = str((params or {}).get("name") or "").strip()[:24]
    return {"name": name, "ready": False}


lobby = actor(state={"rounds": []}, create_conn_state=create_conn_state, max_inbox=4096)


def players(c) -> list:
    """The connected players (one-off action calls are connections too, but not players)."""
    return [conn for conn in c.conns.values() if conn.is_hibernatable and conn.state["name"]]


def roster(c) -> list:
    return sorted(({"name": p.state["name"], "ready": p.state["ready"]} for p in players(c)),
                  key=lambda p: p["name"])


@lobby.on_before_connect
def check_seat(c, params) -> None:
    name = str((params or {}).get("name") or "").strip()[:24]
    if not name:
        return  # a spectator or a one-off call
    taken = players(c)
    if any(p.state["name"] == name for p in taken):
        raise NameTaken(metadata={"name": name})
    if len(taken) >= MAX_PLAYERS:
        raise LobbyFull(metadata={"max_players": MAX_PLAYERS})


@lobby.on_connect
def joined(c, conn) -> None:
    if conn.is_hibernatable and conn.state["name"]:
        c.broadcast("roster", roster(c))


@lobby.on_disconnect
def left(c, conn) -> None:
    if conn.is_hibernatable and conn.state["name"]:
        c.broadcast("roster", [p for p in roster(c) if p["name"] != conn.state["name"]])


@lobby.action
def set_ready(c, ready: bool = True) -> dict:
    """Mark the calling player ready (or not); starts the round when everyone is."""
    if not c.conn.is_hibernatable or not c.conn.state["name"]:
        raise UserError("Connect with params={'name': ...} to play", code="not_a_player")
    c.conn.state = {**c.conn.state, "ready": bool(ready)}
    everyone = players(c)
    if len(everyone) >= MIN_PLAYERS and all(p.state["ready"] for p in everyone):
        names = sorted(p.state["name"] for p in everyone)
        round_info = {"round": len(c.state["rounds"]) + 1, "players": names}
        c.state["rounds"].append(round_info)
        for p in everyone:
            p.state = {**p.state, "ready": False}
        c.broadcast("game_started", round_info)
        return round_info
    c.broadcast("roster", roster(c))
    return {"round": None, "players": [p["name"] for p in roster(c)]}


@lobby.action
def get_roster(c) -> list:
    return roster(c)


@lobby.action
def get_rounds(c) -> list:
    return list(c.state["rounds"])
