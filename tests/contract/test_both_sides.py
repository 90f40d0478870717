"""Both sides of the wire, run on the same bytes, agree because they share the contract.

The control plane signs, the agent verifies; the control plane measures a quantized variant and
the agent serves it: the figures must be the same figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("ai_edge_quantizer", reason="quantizing the test model needs the optimize "
                    "extra (the agent-only venv of `make test-agent` lacks it)")
pytest.importorskip("sqlalchemy", reason="the control plane's side needs its extra")

from agent.runtime import ModelRunner
from agent.settings import AgentSettings
from controlplane import modelgen
from controlplane.registry.measure import reference_outputs
from controlplane.registry.tflite import inspect_model
from protos.contract.interpreters import available
from tests.registry import quantize


@pytest.mark.parametrize("interpreter", available())
def test_agent_and_control_plane_give_identical_outputs_for_a_full_int8_variant(
        tmp_path: Path, interpreter: str) -> None:
    """Input tried: the project's CNN quantized to full int8 (int8 input and output tensors),
    fed the same float images on both sides."""
    model = quantize(modelgen.build_cnn(seed=3), "static")
    path = tmp_path / "cnn-int8.tflite"
    path.write_bytes(model)
    info = inspect_model(model)
    assert info.inputs[0].dtype == "int8" and info.outputs[0].dtype == "int8"
    manifest = {"inputs": [t.to_json() for t in info.inputs],
                "outputs": [t.to_json() for t in info.outputs]}
    runner = ModelRunner(path, manifest, settings=AgentSettings(interpreter=interpreter,
                                                                runner_pool_size=1))
    images = modelgen.calibration_samples(info.inputs, samples=4, seed=9)["image"]
    for image in images:
        served = runner.predict({"image": image})
        measured = reference_outputs(path, {"image": image}, interpreter=interpreter)
        assert served.keys() == measured.keys() == {"scores"}
        np.testing.assert_array_equal(served["scores"], measured["scores"])
        assert served["scores"].dtype == np.float32
