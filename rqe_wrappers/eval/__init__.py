"""Evaluation: cross-play, held-out populations and the robustness audit (docs/evaluation.md)."""
