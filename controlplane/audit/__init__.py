"""The audit log: who did what to the fleet, and the rollout engine\x27s own steps."""
