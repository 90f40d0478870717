"""Tests of protos.contract: what both sides of the wire agree on."""
