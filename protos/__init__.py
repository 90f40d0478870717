"""The EdgeFleet wire contract: ``edgefleet.proto`` and the Python generated from it.

Both ``controlplane`` and ``agent`` import from here; neither imports the other.
"""
