"""The optimize pipeline's Celery task (``optimize.pipeline`` does the work).

Idempotent: a settled version is left alone and a half-done one carries on where it stopped, so a
redelivered task (``acks_late``: a worker killed mid-task leaves the message to another) or one
re-sent by the registry's sweep is harmless.
"""

from __future__ import annotations

from controlplane.jobs.app import app
from controlplane.jobs.base import TRANSIENT, PlaneTask
from controlplane.optimize import pipeline
from controlplane.registry import push
from controlplane.registry.errors import ArtifactNotFoundError, InterpreterUnavailableError

# Missing bytes or a missing package (interpreter, quantizer) are this host's fault, not the
# model's: retry (and the periodic sweep re-sends the task after the retries), never mark the
# model failed for them. A model's own fault settles its variant inside the pipeline instead.
HOST_TROUBLE = (*TRANSIENT, ArtifactNotFoundError, InterpreterUnavailableError)


@app.task(base=PlaneTask, bind=True, name=push.PIPELINE_TASK, autoretry_for=HOST_TROUBLE)
def run_pipeline(self: PlaneTask, version_id: str) -> None:
    pipeline.run(self.plane, version_id)
