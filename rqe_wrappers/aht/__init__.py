"""Minimax-Bayes ad hoc teamwork: the wrapper, its frozen config, seating, scenarios and nature. Docs: docs/aht.md."""
