"""Fleet domain: enrollment, devices, hardware profiles, desired and active state, variant
choice."""
