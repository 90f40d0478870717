"""How a rollout reads for people: its status (plan, waves, gate readings), the live view of
``rollout status --watch``, and audit events (``rollout history``, ``audit list``).

Pure functions of the contract documents built by ``controlplane.cli.convert``: no I/O, so the
tables are tested from constructed messages. Plain ASCII, no colour (see ``output``): a view
reads the same in a terminal, a pipe and a log.
"""

from __future__ import annotations

from typing import Any

from controlplane.cli.output import render_fields, render_table
from controlplane.durations import format_duration

Doc = dict[str, Any]

#: Characters of the progress bar of a wave in the live view.
BAR_WIDTH = 16


def percent(share: float | None) -> str:
    """``0.95`` -> ``"95%"``, ``0.005`` -> ``"0.5%"``; ``None`` -> ``"-"``."""
    return "-" if share is None else f"{share * 100:.4g}%"


def _seconds(value: int | None) -> str:
    return "-" if value is None else format_duration(value)


def _ratio(done: int, total: int) -> str:
    return f"{done}/{total}"


def progress(doc: Doc) -> str:
    """One line over every wave: ``3/10 ok, 1 failed, 2 skipped (...)``."""
    waves = doc["waves"]
    devices = sum(w["devices"] for w in waves)
    succeeded = sum(w["succeeded"] for w in waves)
    failed = sum(w["failed"] for w in waves)
    skipped = sum(w["skipped"] for w in waves)
    none_fit = sum(w["no_compatible"] for w in waves)
    return f"{succeeded}/{devices} ok, {failed} failed" + (
        f", {skipped} skipped (taken over by a newer rollout or revoked)" if skipped else "") + (
        f", {none_fit} with no compatible variant" if none_fit else "")


# -- the plan ------------------------------------------------------------------------------------

def _window(window: Doc | None) -> str:
    if window is None:
        return "always open"
    return (f"'{window['cron']}' for {_seconds(window['duration_seconds'])} "
            f"({window['time_zone']})")


def _gate_limits(gates: Doc) -> str:
    rollbacks = gates["max_rollbacks"]
    return (f"p95 at most +{percent(gates['max_p95_regression'])}, "
            f"errors at most {percent(gates['max_error_rate'])}, "
            f"non-finite at most {percent(gates['max_nonfinite_rate'])}, "
            f"rollbacks at most {'-' if rollbacks is None else rollbacks}; "
            f"judged from {gates['min_inferences']} inferences per class")


def render_plan(plan: Doc) -> str:
    rate = plan["max_per_minute"]
    gates = plan["gates"]
    return render_fields([
        ("waves", ",".join(plan["waves"]) or "-"),
        ("bake", _seconds(plan["bake_seconds"])),
        ("success threshold", percent(plan["success_threshold"])),
        ("max failures", plan["max_failures"]),
        ("min finished", plan["min_finished"]),
        ("step timeout", _seconds(plan["step_timeout_seconds"])),
        ("rate", "-" if rate is None else f"{rate}/min" if rate else "no limit"),
        ("start", plan["start_at"] or "at once"),
        ("window", _window(plan["window"])),
        ("dynamic", plan["dynamic"]),
        ("gates", _gate_limits(gates) if gates else "-"),
        ("on breach", gates["on_breach"] if gates else None),
    ])


# -- gate readings -------------------------------------------------------------------------------

def _observed(g: Doc) -> str:
    """The figure a gate judged, in the gate's unit, against its limit."""
    if g["verdict"] == "not_applicable":
        return "-"
    if g["gate"] == "p95_regression":
        text = f"{'+' if g['observed'] >= 0 else ''}{percent(g['observed'])}"
        if g["new_value"] is not None and g["baseline"] is not None:
            text += f" ({g['new_value']:.3g} vs {g['baseline']:.3g} ms)"
        return text
    if g["gate"] == "rollbacks":
        return f"{g['observed']:g}"
    return percent(g["observed"])


def _limit(g: Doc) -> str:
    if g["gate"] == "p95_regression":
        return f"+{percent(g['limit'])}"
    if g["gate"] == "rollbacks":
        return f"{g['limit']:g}"
    return percent(g["limit"])


def gate_rows(wave: Doc, min_inferences: int | None) -> list[tuple[Any, ...]]:
    """One row per reading: gate, class, verdict, observed, limit, inferences (new / min),
    baseline source and inferences, detail."""
    need = "?" if min_inferences is None else str(min_inferences)
    return [(g["gate"], g["class_name"] or g["hardware_class"], g["verdict"], _observed(g),
             _limit(g), f"{g['inferences']}/{need}",
             f"{g['baseline_source']} ({g['baseline_inferences']})"
             if g["baseline_source"] != "none" else "none", g["detail"])
            for g in wave["gates"]]


GATE_HEADERS = ("gate", "class", "verdict", "observed", "limit", "inferences/min", "baseline",
                "detail")


def _min_inferences(doc: Doc) -> int | None:
    plan = doc.get("plan")
    gates = plan["gates"] if plan else None
    return gates["min_inferences"] if gates else None


# -- status --------------------------------------------------------------------------------------

def _failed(w: Doc) -> str:
    return f"{w['failed']} ({w['timed_out']} timed out)" if w["timed_out"] else str(w["failed"])


def _summary(doc: Doc) -> list[tuple[str, Any]]:
    pairs: list[tuple[str, Any]] = [
        ("id", doc["id"]),
        ("model", f"{doc['model']}:{doc['version']}"),
        ("selector", doc["selector"]),
        ("variant", doc["variant"] or f"chosen per device, preferring {doc['prefer']}"),
        ("state", doc["state"]),
    ]
    if doc["reason"]:
        pairs.append(("reason", doc["reason"]))
    if doc["previous_version"]:
        pairs.append(("replaces", f"{doc['model']}:{doc['previous_version']}"))
    pairs.append(("progress", progress(doc)))
    return pairs


def render_rollout(doc: Doc) -> str:
    """``rollout status`` (and ``create``, ``pause`` ...): the rollout, its plan, its waves with
    every device count, each wave's gate readings, and why devices failed."""
    fields = render_fields([
        *_summary(doc),
        ("created", doc["created_at"]),
        ("updated", doc["updated_at"]),
        ("created by", doc["created_by"]),
    ])
    parts = [fields]
    if doc["plan"]:
        parts.append("plan:\n" + render_plan(doc["plan"]))
    waves = render_table(
        ("wave", "target", "devices", "queued", "in progress", "held", "succeeded", "failed",
         "skipped", "no variant", "rolled back", "state", "bake until"),
        [(w["index"], w["target"], w["devices"], w["queued"], w["in_progress"], w["held"],
          w["succeeded"], _failed(w), w["skipped"], w["no_compatible"], w["rolled_back"],
          w["state"], w["bake_until"]) for w in doc["waves"]],
    )
    parts.append("waves:\n" + (waves if doc["waves"] else "(none yet)"))
    need = _min_inferences(doc)
    for w in doc["waves"]:
        if w["gates"]:
            parts.append(f"wave {w['index']} gates:\n"
                         + render_table(GATE_HEADERS, gate_rows(w, need)))
    if doc["failed_devices"]:
        parts.append("failed devices:\n" + render_table(
            ("device", "state", "why"),
            [(d["device_id"], d["state"], d["message"]) for d in doc["failed_devices"]]))
    return "\n\n".join(parts)


# -- the live view -------------------------------------------------------------------------------

def bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """``[#########.......] 57/100``: ``done`` of ``total`` (an empty bar when ``total`` is 0)."""
    filled = 0 if total <= 0 else min(width, done * width // total)
    return f"[{'#' * filled}{'.' * (width - filled)}] {_ratio(done, total)}"


_COUNTS = (("queued", "queued"), ("in_progress", "in progress"), ("held", "held for window"),
           ("skipped", "skipped"), ("no_compatible", "no variant"),
           ("rolled_back", "rolled back"))


def _counts(w: Doc) -> str:
    parts = [f"{w[key]} {label}" for key, label in _COUNTS if w[key]]
    if w["failed"]:
        parts.append(f"{w['failed']} failed" + (f" ({w['timed_out']} timed out)"
                                                 if w["timed_out"] else ""))
    return ", ".join(parts)


def _wave_state(w: Doc) -> str:
    if w["state"] == "baking" and w["bake_until"]:
        return f"baking until {w['bake_until']}"
    return str(w["state"])


def render_live(doc: Doc) -> str:
    """``rollout status --watch``: the summary, a progress bar per wave (devices ok of the
    wave's) with its counts by device state, and the gate readings against their limits."""
    lines = [render_fields(_summary(doc)), ""]
    rows = [(f"wave {w['index']}", bar(w["succeeded"], w["devices"]), _wave_state(w),
             _counts(w)) for w in doc["waves"]]
    lines.append(render_table(("wave", "ok of devices", "state", "devices by state"), rows)
                 if rows else "waves: (none yet)")
    need = _min_inferences(doc)
    for w in doc["waves"]:
        if w["gates"]:
            lines += ["", f"wave {w['index']} gates:",
                      render_table(GATE_HEADERS, gate_rows(w, need))]
    return "\n".join(lines)


# -- audit events --------------------------------------------------------------------------------

def render_events(events: list[Doc], *, subject: bool) -> str:
    """History or audit log rows: time, actor, role, action, [subject,] wave, reason."""
    if not events:
        return "(no events)"
    headers = ("time", "actor", "role", "action") + (("subject",) if subject else ()) + (
        "wave", "reason")
    rows = [(e["at"], e["actor"], e["actor_role"], e["action"])
            + ((f"{e['subject'] or '-'}:{e['subject_id'] or '-'}",) if subject else ())
            + (e["wave"], e["reason"]) for e in events]
    return render_table(headers, rows)
