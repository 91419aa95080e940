"""Score runs whose process died show as Crashed in the Prefect UI, by Prefect's own mechanisms.

- The flow process is killed (OOM, ``kill -9``) under ``emotion serve``: the serving runner sees its
  child exit and reports the run Crashed.
- ``emotion score`` or a served run gets SIGTERM or Ctrl-C: Prefect's engine reports Crashed itself.
- The whole machine, or the ``emotion serve`` process with its runs, dies: nothing is left to
  report. Every flow run sends a heartbeat event every ``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``
  seconds (Prefect's default: 180); the automation below, created on the server by ``emotion
  serve`` and ``emotion score``, marks a score run Crashed when two heartbeats in a row are missing
  and no final state came (Prefect's documented zombie-flow detection, scoped to this flow).
The next run scores what a crashed run left: outputs are written atomically, the video row last.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from prefect.automations import Automation
from prefect.client.schemas.objects import StateType
from prefect.events.actions import ChangeFlowRunState
from prefect.events.schemas.automations import EventTrigger, Posture
from prefect.events.schemas.events import ResourceSpecification
from prefect.settings import get_current_settings

log = logging.getLogger(__name__)
MISSED_HEARTBEATS = 2


def automation_name(flow_name: str) -> str:
    return f"crash {flow_name} runs without heartbeats"


def zombie_automation(flow_name: str, heartbeat_seconds: int) -> Automation:
    """Mark a run of ``flow_name`` Crashed when no heartbeat or final state follows a heartbeat
    for MISSED_HEARTBEATS heartbeat periods."""
    return Automation(
        name=automation_name(flow_name),
        description=f"Runs of the {flow_name!r} flow whose process died (no heartbeat for "
                    f"{MISSED_HEARTBEATS * heartbeat_seconds} s) are marked Crashed.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"},
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            match_related=ResourceSpecification({"prefect.resource.role": "flow", "prefect.resource.name": flow_name}),
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=MISSED_HEARTBEATS * heartbeat_seconds),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message=f"No heartbeat for {MISSED_HEARTBEATS * heartbeat_seconds} s: "
                                            "the flow run's process died")],
    )


def ensure_crash_detection(flow_name: str) -> None:
    """Create (or bring up to date) the automation on the Prefect API in use. A server that cannot
    hold it costs a warning, never the run."""
    heartbeat = get_current_settings().flows.heartbeat_frequency
    if heartbeat is None:
        log.warning("flow run heartbeats are off (PREFECT_FLOWS_HEARTBEAT_FREQUENCY): runs whose machine "
                    "dies will stay Running in the Prefect UI")
        return
    wanted = zombie_automation(flow_name, heartbeat)
    try:
        try:
            existing = Automation.read(name=wanted.name)
        except ValueError:  # not there yet
            wanted.create()
            return
        if existing.trigger != wanted.trigger or existing.actions != wanted.actions or not existing.enabled:
            existing.trigger, existing.actions, existing.enabled = wanted.trigger, wanted.actions, True
            existing.description = wanted.description
            existing.update()
    except Exception as exc:  # an API without automations, or a transient error
        log.warning("could not set up crash detection on the Prefect server (%s): runs whose machine dies "
                    "will stay Running in the Prefect UI", exc)
