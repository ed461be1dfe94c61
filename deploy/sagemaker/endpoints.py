"""``deploy``: create or update the SageMaker endpoint (``status`` and ``delete`` are in
status.py and teardown.py; their arguments in deploy.cli).

The work is elsewhere in deploy.sagemaker, one job per module: rollout (create or update
without downtime), modes (what differs between real-time, serverless and async),
resources, waiter, autoscaling, status and teardown.
"""

from __future__ import annotations

import json

from deploy import config as cfg
from deploy.errors import UserError
from deploy.sagemaker import components, iam, locations, rollout
from deploy.sagemaker.aws import Aws, session, translate_errors
from deploy.sagemaker.model_source import check_source, resolve_image


@translate_errors
def run_deploy(args) -> int:
    config = cfg.load(args, container=True)
    if print_policies(args, config):
        return 0
    require_role(config, "deploy")
    aws = Aws(config)
    # The model data, before the first alarm, model or endpoint is made.
    check_source(aws, config)
    if config.deploy_mode.component:
        components.deploy(aws, config, wait_done=args.wait)
    else:
        rollout.deploy(aws, config, wait=args.wait)
    return 0


def print_policies(args, config) -> bool:
    """--print-trust-policy / --print-role-policy: print and say so (no AWS call but STS)."""
    if args.print_trust_policy:
        print(json.dumps(iam.TRUST_POLICY, indent=2))
        return True
    if args.print_role_policy:
        region = policy_region(config)
        print(json.dumps(iam.role_policy(config, region, resolve_image(config, region)),
                         indent=2))
        return True
    return False


def policy_region(config) -> str:
    """The region the policy names; any ("*") when the image and bucket need none."""
    region = session(config).region_name
    if region:
        return locations.region(region, f"the region ({config.name('region')} or AWS_REGION)")
    if config.image and config.bucket:
        return "*"
    raise UserError(f"no AWS region: set {config.name('region')}=... (the policy names the"
                    f" region's DLC image and default bucket; with {config.name('image')}"
                    f" and {config.name('bucket')} set it needs none)")


# The commands with --print-role-policy; `cloudformation` makes what `deploy` would, so
# `deploy --print-role-policy` (with the same settings) prints its role's policy too.
PRINTS_POLICIES = ("deploy", "transform")


def require_role(config, command: str) -> None:
    if not config.role:
        printer = command if command in PRINTS_POLICIES else "deploy"
        shows = ("make role-policy" if config.make_names and printer == "deploy"
                 else f"python -m deploy {printer} --print-role-policy")
        raise UserError(f"set {config.name('role')} to the SageMaker execution role ARN"
                        f" (`{shows}` with the same settings prints the policy it needs,"
                        " --print-trust-policy its trust policy)")
