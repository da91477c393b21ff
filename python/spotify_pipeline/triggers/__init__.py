"""Triggers behind the deferrable sensors (see ``spotify_pipeline.sensors``); not in this release."""
