"""Triggers behind the deferrable sensors: they wait in the triggerer, not in a worker slot."""
