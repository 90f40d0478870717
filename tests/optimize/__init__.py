"""Tests of the optimize domain: variant plans and builds with the real ai-edge-quantizer."""
