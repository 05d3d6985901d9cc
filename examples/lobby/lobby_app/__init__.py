"""A multiplayer game lobby: one `lobby` actor per lobby, one connection per player."""
