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


def test_the_metrics_bounds_read_from_text():
    s = AgentSettings().with_text(["max_metrics_buffer_bytes=65536",
                                   "metrics_checkpoint_seconds=0.5"])
    assert (s.max_metrics_buffer_bytes, s.metrics_checkpoint_seconds) == (65536, 0.5)
    assert (AgentSettings().max_metrics_buffer_bytes, AgentSettings().metrics_checkpoint_seconds) \
        == (1024 * 1024, 2.0)


@pytest.mark.parametrize(("pair", "says"), [
    ("max_metrics_buffer_bytes=1000", r"max_metrics_buffer_bytes must be in \[16384, 67108864\]"),
    ("max_metrics_buffer_bytes=100000000", "max_metrics_buffer_bytes must be in"),
    ("metrics_checkpoint_seconds=0", "metrics_checkpoint_seconds must be at least 0.1"),
    ("metrics_checkpoint_seconds=-2", "metrics_checkpoint_seconds must be at least"),
    ("metrics_window_seconds=0", "metrics_window_seconds must be greater than 0"),
    # Replaced by the byte bound: refused, naming the settings there are.
    ("max_buffered_windows=10", "max_metrics_buffer_bytes"),
])
def test_a_metrics_bound_past_its_limits_is_refused_naming_it(pair, says):
    """Input tried: a buffer too small for a few windows, one too large to rewrite at each
    change, checkpoints with no interval, and a setting an earlier version had."""
    with pytest.raises(ValueError, match=says):
        AgentSettings().with_text([pair])
