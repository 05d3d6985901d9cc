"""A per-user assistant: one `assistant` actor per user, with memory and reminders."""
