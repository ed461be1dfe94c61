"""``deploy``, ``status``, ``delete``: the command line of a SageMaker endpoint.

The work is elsewhere in deploy.sagemaker, one job per module: rollout (create or update
without downtime), modes (what differs between real-time, serverless and async),
resources, waiter, autoscaling, status and teardown.
"""

from __future__ import annotations

import json

from deploy import config as cfg
from deploy.errors import UserError
from deploy.sagemaker import components, iam, rollout
from deploy.sagemaker.aws import Aws, translate_errors
from deploy.sagemaker.model_source import resolve_image
from deploy.sagemaker.status import run_status
from deploy.sagemaker.teardown import run_delete

_DEPLOY_FIELDS = tuple(n for n in cfg.FIELDS if n not in (
    "transform_input", "transform_output", "max_payload_mb", "split_type",
    "max_concurrent_transforms"))
AWS_FIELDS = ("endpoint", "region", "profile", "endpoint_url", "s3_endpoint_url")
# status and delete also take the inference component they are about
TARGET_FIELDS = (*AWS_FIELDS, "component")


def register(subparsers) -> None:
    p = subparsers.add_parser("deploy", help="create or update the SageMaker endpoint",
                              description=rollout.__doc__.splitlines()[0])
    add_run_arguments(p, _DEPLOY_FIELDS)
    p.set_defaults(func=run_deploy)

    s = subparsers.add_parser("status", help="show the endpoint, its model (or inference"
                              " components) and autoscaling")
    cfg.add_arguments(s, TARGET_FIELDS)
    s.set_defaults(func=run_status)

    d = subparsers.add_parser("delete", help="remove endpoint, endpoint configs and models"
                              " (--component: one inference component; the endpoint goes"
                              " with the last)")
    cfg.add_arguments(d, TARGET_FIELDS)
    d.add_argument("--purge", action="store_true", help="also delete the model archives in S3")
    d.set_defaults(func=run_delete)


def add_run_arguments(parser, fields: tuple[str, ...]) -> None:
    """What creates resources takes: the settings, --env, --no-wait and the policies."""
    cfg.add_arguments(parser, fields)
    cfg.add_env_argument(parser)
    parser.add_argument("--no-wait", dest="wait", action="store_false",
                        help="return once the request is accepted")
    parser.add_argument("--print-role-policy", action="store_true",
                        help="print the execution role's least-privilege policy and exit")
    parser.add_argument("--print-trust-policy", action="store_true",
                        help="print the execution role's trust policy and exit")


@translate_errors
def run_deploy(args) -> int:
    config = cfg.load(args, container=True)
    if print_policies(args, config):
        return 0
    require_role(config, "deploy")
    if config.deploy_mode.component:
        components.deploy(Aws(config), config, wait_done=args.wait)
    else:
        rollout.deploy(Aws(config), config, wait=args.wait)
    return 0


def print_policies(args, config) -> bool:
    """--print-trust-policy / --print-role-policy: print and say so (no AWS call but STS)."""
    if args.print_trust_policy:
        print(json.dumps(iam.TRUST_POLICY, indent=2))
        return True
    if args.print_role_policy:
        region = config.region or Aws(config).region
        print(json.dumps(iam.role_policy(config, region, resolve_image(config, region)),
                         indent=2))
        return True
    return False


def require_role(config, command: str) -> None:
    if not config.role:
        raise UserError(f"set ROLE to the SageMaker execution role ARN (`python -m deploy"
                        f" {command} --print-role-policy` prints the policy it needs)")
