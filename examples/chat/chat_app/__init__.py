"""A chat room with a browser page: one `room` actor per room name."""
