"""Seats played inside the env: fixed background partners, and the single learning seat of AEC copies."""
