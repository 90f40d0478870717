"""The hand-written half of the wire contract: what the control plane and the agent must agree on.

``edgefleet.proto`` fixes the messages; this package fixes what travels inside them and how both
sides treat it, written once so the two can never drift:

- ``documents``     signed documents (canonical JSON, the nested JSON form, key ids, type
                    strings, RFC 3339 times) and the manifest's tensor specs
- ``identifiers``   the shapes of sha256 digests and enrollment keys
- ``quantization``  affine (u)int8 quantize/dequantize, per tensor and per channel
- ``interpreters``  the TFLite interpreters the fleet runs, how to import them, which is preferred
- ``versions``      runtime version strings and their order
- ``histograms``    latency histograms of metric windows: layout, checks, quantiles
- ``files``         crash-safe file writes
- ``golden``        golden samples: their artifact's format, bounded decoding, the check

Rules: ``agent`` and ``controlplane`` both import from here and never from each other. Modules
here depend on the standard library, numpy and cryptography only (both sides install them), do
no network I/O, and raise ``ContractError`` (a ``ValueError``) for data that breaks the
contract; each side wraps it in its own error at its boundary.
"""

from protos.contract.errors import ContractError

__all__ = ["ContractError"]
