"""A device model held outside its maintenance window (``DeviceModel.hold``) is published with
``"hold": true`` on its desired-state entry, which the agent's trust core reads; lifted, the
entry is published without it. Both sides run on the same signed bytes."""

from __future__ import annotations

import json

from sqlalchemy.orm import Session, sessionmaker

from agent import trust
from controlplane.db import transaction
from controlplane.fleet import services as fleet
from controlplane.fleet.models import DeviceModel
from protos.contract.documents import Signed
from tests.rollouts.factories import NOW, SETTINGS, SIGNER, devices, ready_version


def test_a_held_device_model_is_published_with_hold_and_the_agent_reads_it(
        session_factory: sessionmaker[Session]) -> None:
    """Input tried: one device whose model row holds, then the hold lifted."""
    key = trust.load_public_key(SIGNER.public_pem)
    with transaction(session_factory) as s:
        variant = ready_version(s, "1", seed=1)
        [device] = devices(s, 1, {})
        row = DeviceModel(device_id=device, model_name="m", desired_variant_id=variant,
                          hold=True)
        s.add(row)
        s.flush()
        held = fleet.publish_desired_state(s, device, signer=SIGNER, settings=SETTINGS, now=NOW)
        [raw] = json.loads(held.payload)["models"]
        assert raw["hold"] is True
        state = trust.verify_desired_state(
            Signed(held.payload, held.signature, held.key_id), key, device_id=device,
            held_sequence=0, now=NOW)
        assert state is not None
        [entry] = state.entries
        assert (entry.model, entry.hold) == ("m", True)

        row.hold = False
        s.flush()
        lifted = fleet.publish_desired_state(s, device, signer=SIGNER, settings=SETTINGS,
                                             now=NOW)
        assert "hold" not in json.loads(lifted.payload)["models"][0]
        state = trust.verify_desired_state(
            Signed(lifted.payload, lifted.signature, lifted.key_id), key, device_id=device,
            held_sequence=state.sequence, now=NOW)
        assert state is not None and state.entries[0].ref == entry.ref
        assert state.entries[0].hold is False
