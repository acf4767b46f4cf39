"""Paper experiments (small-budget reproductions)."""
