"""``AgentSettings.with_text``: what ``edgefleet-agent run --set NAME=VALUE`` turns into."""

from __future__ import annotations

import pytest

from agent.settings import AgentSettings


def test_each_kind_of_setting_reads_from_text():
    s = AgentSettings().with_text(["probation_seconds=5", "runner_pool_size=3",
                                   "interpreter=ai-edge-litert", "poll-interval-seconds=0.5",
                                   "latency_buckets_ms=1,2,3"])
    assert (s.probation_seconds, s.runner_pool_size, s.interpreter) == (5.0, 3, "ai-edge-litert")
    assert s.poll_interval_seconds == 0.5 and s.latency_buckets_ms == (1.0, 2.0, 3.0)
    assert AgentSettings(interpreter="tflite-runtime").with_text(["interpreter=none"]) \
        .interpreter is None


@pytest.mark.parametrize(("pair", "says"), [
    ("probation", "not NAME=VALUE"),                     # no value
    ("no_such_setting=1", "not NAME=VALUE"),             # not a setting
    ("runner_pool_size=2.5", "runner_pool_size=2.5"),    # not an int
    ("runner_pool_size=0", "runner_pool_size"),          # the setting's own check
    ("interpreter=tflite", "interpreter must be one of"),
])
def test_a_bad_pair_is_refused_naming_it(pair, says):
    with pytest.raises(ValueError, match=says):
        AgentSettings().with_text([pair])
