"""A study before any training: its results folder (who owns it, what --overwrite may delete) and its plan (the
runs it holds and will hold, worked out once for every command)."""
