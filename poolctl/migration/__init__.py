"""Migrations as the TUI and the CLI run them: one move (controller), later many (planner)."""
