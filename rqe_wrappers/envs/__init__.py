"""Small environments from the papers (PettingZoo API)."""
