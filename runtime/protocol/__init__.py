"""Messages, plain-data rules and limits shared by every transport. Imports nothing above it."""
