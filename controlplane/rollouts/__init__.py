"""Rollouts domain: plans, waves, membership and the engine that moves devices through them."""
