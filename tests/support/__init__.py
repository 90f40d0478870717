"""Shared test support: real local servers (PostgreSQL, Redis), databases, and network helpers.

Nothing here is a mock: every helper starts or prepares a real part that tests then use as-is.
"""
