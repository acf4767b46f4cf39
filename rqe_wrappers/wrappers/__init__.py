"""PettingZoo -> PettingZoo wrappers. They know PettingZoo and numpy, never SB3."""
