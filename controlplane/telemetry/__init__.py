"""Telemetry domain: install events and inference metric windows reported by agents."""
