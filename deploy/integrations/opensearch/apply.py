"""``--apply``: create the connector, register and deploy the model, put the pipeline.

Idempotent: the connector and the model are looked up by name first and reused, so a
re-run creates nothing twice; the pipeline PUT replaces itself.  A connector whose settings
differ from what this version emits (another region, header or request body) is updated in
place, so a re-run after an upgrade or a change never leaves the cluster on the old ones;
ml-commons updates only a connector no deployed model uses, so its model is undeployed for
the update and deployed again.  A refusal from the cluster stops the run with one line that
says what had already been done.
"""

from __future__ import annotations

import sys
import time

from deploy.errors import UserError
from deploy.integrations.opensearch import cluster, patterns
from deploy.integrations.opensearch.cluster import ClusterError, call
from deploy.integrations.opensearch.patterns import Pattern
from deploy.integrations.opensearch.steps import steps
from deploy.integrations.opensearch.target import Target

_READY = ("DEPLOYED",)
_BUSY = ("DEPLOYING",)
_RETRY_GRACE_S = 10.0  # a failed model asked to deploy again may read failed this long
_FAILED = ("DEPLOY_FAILED", "FAILED")
_IDLE = ("REGISTERED", "UNDEPLOYED", *_FAILED)  # nothing to undeploy


def run(client, pattern: Pattern, target: Target, *, send_aws_credentials: bool = False,
        wait_s: float = 300, echo=print) -> dict:
    done: list[str] = []
    try:
        ids = _apply(client, pattern, target, send_aws_credentials, wait_s, echo, done)
    except ClusterError as exc:
        already = "; already done: " + ", ".join(done) if done else "; nothing was created"
        raise UserError(f"{exc}{already}") from None
    return ids


def _apply(client, pattern, target, send_keys, wait_s, echo, done) -> dict:
    name = pattern.connector_name(target)
    connector_id, how = _connector(client, pattern, target, name, send_keys)
    done.append(f"connector {connector_id} ({how})")
    echo(f"connector_id: {connector_id} ({how})")
    model_id, how = _model(client, pattern, target, name, connector_id)
    done.append(f"model {model_id} ({how})")
    state = _deployed(client, model_id, wait_s, echo, asked=how == "created")
    echo(f"model_id: {model_id} ({how}, {state})")
    pipeline = steps(pattern, target, connector_id, model_id)[3]
    call(client, pipeline.method, pipeline.path, pipeline.body)
    echo(f"pipeline: {pattern.pipeline_name(target)} (created or updated)")
    search = steps(pattern, target, connector_id, model_id)[4]
    echo(f"search with: {search.method} {search.path}")
    return {"connector_id": connector_id, "model_id": model_id,
            "pipeline": pattern.pipeline_name(target)}


def _find(client, kind: str, name: str) -> list[dict]:
    query = {"query": {"term": {"name.keyword": name}}, "size": 100}
    answer = call(client, "POST", f"/_plugins/_ml/{kind}/_search", query, missing_ok=True)
    hits = ((answer or {}).get("hits") or {}).get("hits") or []
    # term on name.keyword is exact already; the check guards against analyzed mappings.
    return [h for h in hits if (h.get("_source") or {}).get("name") == name]


def _connector(client, pattern, target, name, send_keys) -> tuple[str, str]:
    body = patterns.connector(pattern, target)
    found = _find(client, "connectors", name)
    if found:
        current = min(found, key=lambda hit: bool(changed_fields(hit["_source"], body)))
        changed = changed_fields(current["_source"], body)
        if not changed:
            return current["_id"], "existing"
        _update(client, current["_id"], name, _credentialed(body, target, send_keys, False))
        return current["_id"], "updated: " + ", ".join(changed)
    answer = call(client, "POST", "/_plugins/_ml/connectors/_create",
                  _credentialed(body, target, send_keys, True))
    connector_id = (answer or {}).get("connector_id")
    if not connector_id:
        raise ClusterError(f"the create-connector answer has no connector_id: {answer}")
    return connector_id, "created"


def _credentialed(body: dict, target: Target, send_keys: bool, creating: bool) -> dict:
    """The body to send.  A self-managed cluster signs with keys sent only when asked; an
    update without them keeps the keys the connector has (ml-commons never drops a field)."""
    if target.flavour == "aws":
        return body
    if not send_keys:
        if not creating:
            return {k: v for k, v in body.items() if k != "credential"}
        raise UserError(
            "a self-managed cluster signs with access keys, which this tool never writes:"
            " pass --send-aws-credentials to send your current AWS session's keys in the"
            " create-connector request only, or fill and send 01-create-connector.json"
            " yourself")
    keys = cluster.aws_keys()
    if "session_token" in keys:
        print("note: these AWS keys are temporary (they carry a session token): the"
              " connector stops signing when they expire, within hours; give it a"
              " dedicated IAM user's keys for a connector that lasts", file=sys.stderr)
    return {**body, "credential": keys}


_ACTION_FIELDS = ("action_type", "method", "url", "headers", "request_body",
                  "pre_process_function", "post_process_function")


def changed_fields(stored: dict, wanted: dict) -> list[str]:
    """The connector settings that differ between the cluster's copy and ours.  The
    credential is not compared: the cluster stores it encrypted and never shows it."""
    changed = [key for key in ("description", "protocol", "parameters")
               if stored.get(key) != wanted.get(key)]
    stored_actions = [_action(a) for a in stored.get("actions") or []]
    wanted_actions = [_action(a) for a in wanted["actions"]]
    if len(stored_actions) != len(wanted_actions):
        return [*changed, "actions"]
    for mine, theirs in zip(wanted_actions, stored_actions):
        changed += [key for key in _ACTION_FIELDS
                    if mine.get(key) != theirs.get(key) and key not in changed]
    return changed


def _action(action: dict) -> dict:
    # ml-commons stores the action type as its enum's name (PREDICT).
    kept = {k: action.get(k) for k in _ACTION_FIELDS if action.get(k) is not None}
    if "action_type" in kept:
        kept["action_type"] = str(kept["action_type"]).upper()
    return kept


def _update(client, connector_id: str, name: str, body: dict) -> None:
    """PUT the connector's new settings; the models of ours that use it are undeployed
    first (ml-commons refuses otherwise), and deployed again here if the update fails."""
    undeployed = []
    for hit in _find(client, "models", name):
        source = hit["_source"]
        if source.get("connector_id") == connector_id and source.get(
                "model_state") not in _IDLE:
            call(client, "POST", f"/_plugins/_ml/models/{hit['_id']}/_undeploy")
            undeployed.append(hit["_id"])
    try:
        call(client, "PUT", f"/_plugins/_ml/connectors/{connector_id}", body)
    except ClusterError as exc:
        raise ClusterError(f"updating connector {connector_id}: {exc}"
                           f"{_deploy_again(client, undeployed)}") from None


def _deploy_again(client, model_ids: list[str]) -> str:
    """Deploy the models undeployed for a refused update; what became of them, as a clause
    for the error (a failed redeploy is said, never hidden behind the update's error)."""
    said = []
    for model_id in model_ids:
        try:
            call(client, "POST", f"/_plugins/_ml/models/{model_id}/_deploy")
            said.append(f"model {model_id} deployed again as it was")
        except ClusterError as exc:
            said.append(f"model {model_id} left undeployed ({exc}): POST"
                        f" /_plugins/_ml/models/{model_id}/_deploy")
    return f" ({'; '.join(said)})" if said else ""


def _model(client, pattern, target, name, connector_id) -> tuple[str, str]:
    found = _find(client, "models", name)
    mine = [h for h in found if h["_source"].get("connector_id") == connector_id]
    if mine:
        return mine[0]["_id"], "existing"
    if found:
        raise UserError(f"a model named {name!r} ({found[0]['_id']}) uses another connector"
                        f" than {connector_id}; delete it or the connector, then re-run")
    register = steps(pattern, target, connector_id)[1]
    answer = call(client, register.method, register.path, register.body) or {}
    model_id = answer.get("model_id") or _model_from_task(client, answer.get("task_id"))
    return model_id, "created"


def _model_from_task(client, task_id: str | None, tries: int = 60) -> str:
    if not task_id:
        raise ClusterError("the register answer has neither model_id nor task_id")
    for _ in range(tries):
        task = call(client, "GET", f"/_plugins/_ml/tasks/{task_id}") or {}
        if task.get("model_id"):
            return task["model_id"]
        if task.get("state") in _FAILED:
            raise ClusterError(f"registering failed: {task.get('error') or task}")
        time.sleep(1)
    raise ClusterError(f"task {task_id} gave no model_id")


def _deployed(client, model_id: str, wait_s: float, echo, asked: bool) -> str:
    """Deploy when needed (``asked``: _register?deploy=true did) and wait for DEPLOYED.  A
    model an earlier run left failed (a setting since fixed) is deployed once more; its
    state may still read failed for a moment after that request."""
    deadline = time.monotonic() + wait_s
    retried_at = None
    while True:
        state = (call(client, "GET", f"/_plugins/_ml/models/{model_id}") or {}).get(
            "model_state", "UNKNOWN")
        if state in _READY:
            return state
        if state in _FAILED:
            settling = retried_at is not None and time.monotonic() - retried_at < _RETRY_GRACE_S
            if asked and not settling:
                raise ClusterError(f"model {model_id} is {state}; see GET /_plugins/_ml/tasks")
            if not asked:
                retried_at = time.monotonic()  # deployed once more just below
        if state not in _BUSY and not asked:
            call(client, "POST", f"/_plugins/_ml/models/{model_id}/_deploy")
            asked = True
            echo(f"deploying model {model_id} ...")
        if time.monotonic() > deadline:
            raise ClusterError(f"model {model_id} still {state} after {wait_s:.0f} s")
        time.sleep(1)
