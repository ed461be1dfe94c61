"""Waiting for SageMaker to finish something, with a progress line; judging where it ended.

One poll loop for endpoints and transform jobs: each supplies how to describe the resource,
how to read the description (done, still going, or failed with AWS's reason) and what to
show while it waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from deploy.errors import UserError

SETTLING = ("Creating", "Updating", "SystemUpdating", "RollingBack")


class WaitFailed(UserError):
    """SageMaker says it did not work (or not in time); the message says what exists."""


def wait(describe: Callable[[], dict], judge: Callable[[dict], bool],
         show: Callable[[dict, float], str], late: Callable[[dict], str], timeout: float,
         poll: float, on_poll: Callable[[dict], None] | None = None) -> dict:
    """Poll ``describe`` until ``judge`` says done (True) or raises; a rich status line shows
    ``show(description, elapsed)``; after ``timeout`` s, WaitFailed(``late(...)``).
    ``on_poll`` may update a progress display of its own."""
    from rich.console import Console

    started = time.monotonic()
    with Console(stderr=True).status("waiting") as status:
        while True:
            description = describe()
            elapsed = time.monotonic() - started
            status.update(show(description, elapsed))
            if on_poll:
                on_poll(description)
            if judge(description):
                return description
            if elapsed > timeout:
                raise WaitFailed(late(description))
            time.sleep(poll)


def judge_status(description: dict, kind: str, resource: str, going: tuple[str, ...],
                 done: str) -> bool:
    """True at ``done``, False while in ``going``; otherwise WaitFailed with AWS's reason.
    ``resource`` prefixes the description's keys (``TransformJob``: TransformJobStatus,
    TransformJobName)."""
    status = description[f"{resource}Status"]
    if status in going:
        return False
    if status == done:
        return True
    reason = description.get("FailureReason") or "no reason given"
    raise WaitFailed(f"{kind} {description.get(f'{resource}Name')} is {status}: {reason}")


def judge(description: dict, expected_config: str) -> bool:
    """An endpoint: True when done, False while settling; raises WaitFailed with AWS's
    reason."""
    status = description["EndpointStatus"]
    reason = description.get("FailureReason") or "no reason given"
    if status in SETTLING:
        return False
    if status == "InService":
        if description.get("EndpointConfigName") != expected_config:
            raise WaitFailed(f"the update to {expected_config} failed and SageMaker rolled"
                                 f" back to {description.get('EndpointConfigName')}: {reason}")
        return True
    raise WaitFailed(f"endpoint {description.get('EndpointName')} is {status}: {reason}")


def wait_in_service(sm, endpoint: str, expected_config: str, timeout: float, poll: float
                    ) -> dict:
    return wait(lambda: sm.describe_endpoint(EndpointName=endpoint),
                lambda d: judge(d, expected_config),
                lambda d, s: f"{endpoint}: {d['EndpointStatus']} ({s:.0f} s; usually 5-10 min)",
                lambda d: f"{endpoint} is still {d['EndpointStatus']} after {timeout:.0f} s"
                          " (`make status` shows progress)", timeout, poll)
