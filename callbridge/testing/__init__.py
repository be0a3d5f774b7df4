"""Helpers shipped for tests and users (real mosquitto broker, replay, simulator helpers)."""
