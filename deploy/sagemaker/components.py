"""Inference components: several rerankers on one endpoint, each with its own copies.

An endpoint made for components has an endpoint config whose one production variant names
an instance type but no model, with managed instance scaling (MinInstanceCount 0 lets the
endpoint scale to zero instances) and least-outstanding-requests routing; the execution
role sits on the endpoint config.  Each reranker is then a SageMaker model (our image or
the HF DLC, the archive) and an inference component that places ``copies`` of it on the
endpoint, each copy with its CPU cores, accelerators and minimum memory.

``deploy`` creates the endpoint when it does not exist and the component (or updates it
when it does: all copies at once by default, or ``ROLLOUT=rolling`` a batch at a time under
rollback alarms, deploy.sagemaker.guardrails); ``delete`` removes one component, its
scaling, alarms and models, and the endpoint only when no other component is left on it.
Every check runs before the first resource is created.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from deploy.errors import UserError
from deploy.sagemaker import (
    component_scaling,
    guardrails,
    host_ami,
    isolation,
    metrics_config,
    modes,
    names,
    resources,
    sizing,
)
from deploy.sagemaker.aws import error_code, error_message
from deploy.sagemaker.waiter import WaitFailed, judge_status, wait, wait_in_service

ROUTING = "LEAST_OUTSTANDING_REQUESTS"
MIN_MEMORY_MB = 128  # MemoryInMb's minimum in the service model
COMPONENT_SETTLING = ("Creating", "Updating", "Deleting")


def model_base(component: str) -> str:
    """What a component's models are named after: ``<component>-ic`` (then the stamp), apart
    from the models of an endpoint named like the component.  An endpoint named
    ``<component>-ic`` names its models alike: ``models_of`` tells them apart by tag."""
    return f"{component[:37].rstrip('-')}-ic"


def accelerators_of(config, instance_type: str) -> int | None:
    """GPUs per copy: the setting, or one on a GPU instance type, none on CPU."""
    if config.accelerators is not None:
        return config.accelerators
    return 1 if sizing.is_gpu(instance_type) else None


def validate(config) -> None:
    """Every component setting, before any AWS call; one line per refusal."""
    name = config.name
    if not config.component:
        raise UserError(f"component mode needs a component name ({name('component')}): one"
                        " endpoint can host several rerankers, each named")
    if not names.ENDPOINT_NAME.match(config.component):
        raise UserError(f"{name('component')} {config.component!r} is not valid: letters,"
                        " digits and hyphens, at most 63, starting with a letter or digit")
    modes.check_instance_type(config)
    if config.copies < 1:
        raise UserError(f"{name('copies')} must be at least 1 at creation, not"
                        f" {config.copies} ({name('min_copies')} 0 lets autoscaling take it"
                        " to zero)")
    if config.cpu_cores is not None and config.cpu_cores < 0.25:
        raise UserError(f"{name('cpu_cores')} must be at least 0.25 per copy, not"
                        f" {config.cpu_cores}")
    _validate_accelerators(config)
    if config.component_memory_mb is not None and config.component_memory_mb < MIN_MEMORY_MB:
        raise UserError(f"{name('component_memory_mb')} must be at least {MIN_MEMORY_MB}, not"
                        f" {config.component_memory_mb}")
    if config.min_instances < 0 or config.max_instances < max(1, config.min_instances):
        raise UserError(f"instances must satisfy 0 <= {name('min_instances')} <="
                        f" {name('max_instances')} and {name('max_instances')} >= 1 (got"
                        f" {config.min_instances}..{config.max_instances})")
    component_scaling.validate(config)


def _validate_accelerators(config) -> None:
    if config.accelerators is None:
        return
    if config.accelerators < 1:
        raise UserError(f"{config.name('accelerators')} must be at least 1 per copy, not"
                        f" {config.accelerators} (unset it on CPU instance types)")
    if not sizing.is_gpu(config.instance_type):
        raise UserError(f"{config.name('accelerators')}={config.accelerators} needs a GPU"
                        f" instance type (ml.g*, ml.p*), not {config.instance_type}")


def endpoint_config_request(config, name: str, isolated: bool = True) -> dict:
    """CreateEndpointConfig for an endpoint that hosts inference components.  Its instances
    exist before any model does, so their network is set here: the VPC (SUBNETS,
    SECURITY_GROUPS) and isolation (``isolated``, as the first component's model has it),
    as the SageMaker Python SDK sets them for such endpoints."""
    initial = min(max(config.instance_count, config.min_instances, 1), config.max_instances)
    return {
        "EndpointConfigName": name,
        "ExecutionRoleArn": config.role,
        "EnableNetworkIsolation": isolation.network_isolation(config, isolated),
        **isolation.vpc_config(config),
        "ProductionVariants": [{
            "VariantName": resources.VARIANT, "InstanceType": config.instance_type,
            "InitialInstanceCount": initial,
            "ManagedInstanceScaling": {"Status": "ENABLED",
                                       "MinInstanceCount": config.min_instances,
                                       "MaxInstanceCount": config.max_instances},
            "RoutingConfig": {"RoutingStrategy": ROUTING},
            "ModelDataDownloadTimeoutInSeconds": 1800,
            "ContainerStartupHealthCheckTimeoutInSeconds": 900,
            **host_ami.variant_fields(config)}],
        "Tags": names.resource_tags(config),
        **metrics_config.endpoint_metrics(config.metrics_frequency),
        **isolation.volume_key(config),
    }


def component_specification(config, model: str, instance_type: str) -> dict:
    """The component's Specification: the model and what one copy needs."""
    compute = {"MinMemoryRequiredInMb": config.component_memory_mb or sizing.COMPONENT_MIN_MB}
    if config.cpu_cores is not None:
        compute["NumberOfCpuCoresRequired"] = config.cpu_cores
    accelerators = accelerators_of(config, instance_type)
    if accelerators:
        compute["NumberOfAcceleratorDevicesRequired"] = accelerators
    return {"ModelName": model,
            "StartupParameters": {"ModelDataDownloadTimeoutInSeconds": 1800,
                                  "ContainerStartupHealthCheckTimeoutInSeconds": 900},
            "ComputeResourceRequirements": compute}


def describe_component(sm, name: str) -> dict | None:
    return resources.described(sm.describe_inference_component, "DescribeInferenceComponent",
                               name, InferenceComponentName=name)


def components_on(sm, endpoint: str) -> list[dict]:
    """The inference components an endpoint hosts (ListInferenceComponents, all pages)."""
    return _listed(sm, EndpointNameEquals=endpoint)


def _listed(sm, **filters) -> list[dict]:
    found, token = [], None
    while True:
        page = sm.list_inference_components(**filters,
                                            **({"NextToken": token} if token else {}))
        found += page.get("InferenceComponents", [])
        token = page.get("NextToken")
        if not token:
            return found


def hosts_components(sm, endpoint: dict) -> bool:
    """An endpoint made for components (resources.made_for_components)."""
    return resources.made_for_components(
        resources.config_variants(sm, endpoint["EndpointConfigName"]))


def check_endpoint(sm, config, current: dict | None) -> str:
    """The instance type the component will run on; refuses endpoints it cannot join."""
    if current is None:
        return config.instance_type
    from deploy.sagemaker.rollout import check_updatable

    check_updatable(config.endpoint, current)
    if not hosts_components(sm, current):
        raise UserError(f"endpoint {config.endpoint} serves a model directly, not inference"
                        f" components; pick another {config.name('endpoint')} for component"
                        " mode")
    described = resources.endpoint_config(sm, current["EndpointConfigName"])
    _check_network(config, described)
    variant = described["ProductionVariants"][0]
    _note_kept_instances(config, variant)
    instance_type = variant.get("InstanceType", config.instance_type)
    if config.accelerators and not sizing.is_gpu(instance_type):
        raise UserError(f"endpoint {config.endpoint} runs on {instance_type}, which has no"
                        f" GPU: unset {config.name('accelerators')}")
    host_ami.check_existing(config, instance_type, variant)
    return instance_type


def _check_network(config, described: dict) -> None:
    """A component runs in its endpoint's network: SUBNETS and SECURITY_GROUPS other than the
    endpoint's are refused (none given: the endpoint's network, whatever it is)."""
    wanted = isolation.vpc_config(config).get("VpcConfig")
    if not wanted:
        return
    theirs = described.get("VpcConfig") or {}
    if (sorted(theirs.get("Subnets", [])) == sorted(wanted["Subnets"])
            and sorted(theirs.get("SecurityGroupIds", [])) == sorted(wanted["SecurityGroupIds"])):
        return
    where = (f"subnets {', '.join(theirs.get('Subnets', []))}" if theirs
             else "no VPC of yours")
    raise UserError(f"endpoint {config.endpoint} runs in {where}, and its components run in"
                    f" its network: give its {config.name('subnets')} and"
                    f" {config.name('security_groups')}, or another {config.name('endpoint')}")


def _note_kept_instances(config, variant: dict) -> None:
    """MIN_INSTANCES and MAX_INSTANCES shape a new endpoint; an existing one keeps its own
    bounds, which a user who set them should hear rather than find out later."""
    scaling = variant.get("ManagedInstanceScaling") or {}
    theirs = (scaling.get("MinInstanceCount"), scaling.get("MaxInstanceCount"))
    asked = {"min_instances", "max_instances"} & config.explicit
    if asked and theirs != (config.min_instances, config.max_instances):
        print(f"note: endpoint {config.endpoint} keeps its own instance bounds"
              f" ({theirs[0]}..{theirs[1]}); {config.name('min_instances')} and"
              f" {config.name('max_instances')} shape only a new endpoint")


def deploy(aws, config, *, wait_done: bool = True) -> dict:
    """Create the endpoint if needed, then create or update the component; ``wait_done``
    False returns once the component is requested (a new endpoint is still waited for:
    components are placed only on an endpoint that is InService)."""
    from deploy.sagemaker.model_source import model_data_for, resolve_image

    sm = aws.client("sagemaker")
    current = resources.describe(sm, config.endpoint)
    instance_type = check_endpoint(sm, config, current)
    # An existing endpoint's instance type decides how the model loads (bf16 on a GPU, fp32
    # on CPU), so the memory a copy needs.
    sizing.fit_component_memory(config, sizing.manifest_of(config), instance_type)
    existing = check_component(sm, config)
    guard, baking = _guard(config, existing)
    image = resolve_image(config, aws.region, instance_type=instance_type)
    model_data, isolated = model_data_for(aws, config)
    model = names.stamped(model_base(config.component), model_data, image,
                          sorted(config.env.items()))
    made: list[str] = []
    try:
        resources.create_model(sm, config, model, image, model_data, isolated, aws.region,
                               metrics=True, component=config.component)
        made.append(f"model {model}")
        if current is None:
            endpoint_config = create_endpoint(sm, config, made, isolated)
            wait_in_service(sm, config.endpoint, endpoint_config, config.wait_timeout,
                            config.poll_seconds)
        if guard:
            guardrails.put_alarms(aws, config)
            made.append("rollback alarms")
        place(sm, config, model, instance_type, existing, guard)
        made.append(f"inference component {config.component}")
        if not wait_done:
            if config.max_copies:
                print("autoscaling is configured once the component is InService: run"
                      " `make deploy` again after `make status` says InService")
            return {"InferenceComponentName": config.component, "ModelName": model}
        final = wait_component(sm, config.component, config.wait_timeout + baking,
                               config.poll_seconds)
        settle_scaling(aws, config, existing)
    except (ClientError, BotoCoreError) as exc:
        raise UserError(f"{error_code(exc)}: {error_message(exc)};"
                        f" {inventory(made, config)}") from None
    except WaitFailed as exc:
        raise WaitFailed(f"{exc}; {inventory(made, config)}") from None
    if existing:
        refuse_rolled_back(sm, config, final, model)
        prune_models(sm, config.endpoint, config.component, keep=model)
    print(f"{config.component} is InService on {config.endpoint} ({instance_type}, {image})")
    return final


def _guard(config, existing: dict | None) -> tuple[dict, int]:
    """UpdateInferenceComponent's DeploymentConfig for a rolling update (its alarms are put
    just before the update) and the seconds it may bake; nothing for a new component or an
    update all at once (SageMaker's blue/green: a second set of copies, then the switch)."""
    if not (existing and guardrails.guarded(config)):
        return {}, 0
    copies = copy_count(config, existing)
    deployment = guardrails.component_deployment_config(config, copies)  # refuses 1 copy
    return ({"DeploymentConfig": deployment},
            guardrails.component_rollout_seconds(config, copies))


def refuse_rolled_back(sm, config, final: dict, model: str) -> None:
    """A rolling update that an alarm rolled back ends InService on the old model: say so,
    and drop this run's model, which nothing serves."""
    serving = (final.get("Specification") or {}).get("ModelName")
    if serving in (None, model):
        return
    resources.quietly(sm.delete_model, ModelName=model)
    reason = final.get("FailureReason") or "a rollback alarm fired"
    raise UserError(f"the update of {config.component} rolled back ({reason}): it still serves"
                    f" {serving}, and this run's model {model} was deleted; `make status"
                    f" ENDPOINT={config.endpoint} COMPONENT={config.component}` shows the"
                    " alarms")


def check_component(sm, config) -> dict | None:
    """The component as it is now (None: new); refuses one on another endpoint or busy."""
    existing = describe_component(sm, config.component)
    if existing and existing.get("EndpointName") != config.endpoint:
        raise UserError(f"component {config.component} already runs on endpoint"
                        f" {existing.get('EndpointName')}; pick another"
                        f" {config.name('component')}")
    if existing and existing["InferenceComponentStatus"] in COMPONENT_SETTLING:
        raise UserError(f"component {config.component} is"
                        f" {existing['InferenceComponentStatus']}; wait until it settles"
                        " (`make status`) and deploy again")
    return existing


def settle_scaling(aws, config, existing: dict | None) -> None:
    """Autoscaling as the settings say: configured, or removed when turned off."""
    if config.max_copies:
        component_scaling.configure(aws, config)
    elif existing:
        outcome = component_scaling.remove(aws, config.component)
        if outcome.startswith("failed"):  # the update itself succeeded: a note, not a failure
            print(f"note: autoscaling of {config.component} was not checked or removed:"
                  f" {outcome}")


def copy_count(config, existing: dict | None) -> int:
    """COPIES; on an update with autoscaling, the count it had reached, within the bounds."""
    if not (existing and config.max_copies):
        return config.copies
    running = (existing.get("RuntimeConfig") or {}).get("CurrentCopyCount") or 0
    return min(max(running, config.min_copies), config.max_copies)


def create_endpoint(sm, config, made: list[str], isolated: bool = True) -> str:
    """A new endpoint config and endpoint for components (noted in ``made``); returns the
    endpoint config's name."""
    name = names.stamped(config.endpoint, "components", config.instance_type,
                         config.min_instances, config.max_instances)
    sm.create_endpoint_config(**endpoint_config_request(config, name, isolated))
    made.append(f"endpoint config {name}")
    sm.create_endpoint(EndpointName=config.endpoint, EndpointConfigName=name,
                       Tags=names.resource_tags(config))
    made.append(f"endpoint {config.endpoint}")
    print(f"creating {config.endpoint} for inference components ({config.instance_type},"
          f" {config.min_instances}..{config.max_instances} instances)")
    return name


def place(sm, config, model: str, instance_type: str, existing: dict | None,
          guard: dict | None = None) -> None:
    """CreateInferenceComponent, or UpdateInferenceComponent to the new model (rolling,
    with ``guard``'s DeploymentConfig)."""
    spec = component_specification(config, model, instance_type)
    runtime = {"CopyCount": copy_count(config, existing)}
    if existing:
        sm.update_inference_component(InferenceComponentName=config.component,
                                      Specification=spec, RuntimeConfig=runtime,
                                      **(guard or {}))
        how = (guardrails.describe(config, runtime["CopyCount"]) if guard
               else "all copies at once, beside the old ones")
        print(f"updating component {config.component} to {model}"
              f" ({_per_copy(spec['ComputeResourceRequirements'])}; {how})")
        return
    sm.create_inference_component(InferenceComponentName=config.component,
                                  EndpointName=config.endpoint,
                                  VariantName=resources.VARIANT, Specification=spec,
                                  RuntimeConfig=runtime, Tags=names.resource_tags(config))
    count = runtime["CopyCount"]
    print(f"creating component {config.component} on {config.endpoint}: {count}"
          f" {'copy' if count == 1 else 'copies'},"
          f" {_per_copy(spec['ComputeResourceRequirements'])}")


def _per_copy(compute: dict) -> str:
    """What one copy reserves, as the request says it: memory, cores, GPUs."""
    parts = [f"{compute['MinMemoryRequiredInMb']} MB"]
    if "NumberOfCpuCoresRequired" in compute:
        parts.append(f"{compute['NumberOfCpuCoresRequired']:g} CPU cores")
    if "NumberOfAcceleratorDevicesRequired" in compute:
        gpus = compute["NumberOfAcceleratorDevicesRequired"]
        parts.append(f"{gpus} GPU{'s' if gpus > 1 else ''}")
    return "each " + ", ".join(parts)


def wait_component(sm, component: str, timeout: float, poll: float) -> dict:
    return wait(lambda: sm.describe_inference_component(InferenceComponentName=component),
                judge_component,
                lambda d, s: f"{component}: {d['InferenceComponentStatus']} ({s:.0f} s)",
                lambda d: f"component {component} is still {d['InferenceComponentStatus']}"
                          f" after {timeout:.0f} s (`make status` shows progress)",
                timeout, poll)


def judge_component(description: dict) -> bool:
    return judge_status(description, "component", "InferenceComponent", COMPONENT_SETTLING,
                        "InService")


def inventory(made: list[str], config) -> str:
    made_text = f"created by this run: {', '.join(made)}" if made else "nothing was created"
    return (f"{made_text}; `make delete ENDPOINT={config.endpoint}"
            f" COMPONENT={config.component}` removes the component")


def prune_models(sm, endpoint: str, component: str, keep: str) -> None:
    """After an update: the component's older models are no longer used.  The update has
    succeeded by now, so a failure here is a note, never the command's failure."""
    try:
        older = models_of(sm, endpoint, component, running=keep)[0] - {keep}
    except (ClientError, BotoCoreError, UserError) as exc:
        why = str(exc) if isinstance(exc, UserError) else f"{error_code(exc)}: {error_message(exc)}"
        print(f"note: older models of {component} were not pruned ({why}); `make delete`"
              " removes them with the component")
        return
    for name in older:
        resources.quietly(sm.delete_model, ModelName=name)


def models_of(sm, endpoint: str, component: str, running: str | None = None
              ) -> tuple[set[str], dict[str, str]]:
    """The models made for ``component`` on ``endpoint``, and those named alike but kept
    ({"model <name>": "kept (why)"}).  A model tagged for another endpoint is never ours:
    an endpoint named ``<component>-ic`` names its own models alike.  Names are cut to 37
    characters (``model_base``), so another component's models can be named alike too:
    then only the model ``component`` runs (``running``, else DescribeInferenceComponent)
    is surely its own, no model the other runs is ever ours, and an older one is ours when
    its ``names.COMPONENT_TAG`` says so, or (made before that tag) when its endpoint tag rules
    the other out."""
    cut = model_base(component)
    found = resources.named(sm, "list_models", cut, names.ours(cut))
    if not found:
        return set(), {}
    rivals = _rivals(sm, component)
    if rivals:
        running = running or ((describe_component(sm, component) or {}).get("Specification")
                              or {}).get("ModelName")
    ours, kept = set(), {}
    for name, arn in sorted(found.items()):
        why = None if name == running else _not_ours(sm, arn, name, endpoint, component,
                                                      rivals)
        if why:
            kept[f"model {name}"] = f"kept ({why})"
        elif why is None:
            ours.add(name)
    return ours, kept


def _rivals(sm, component: str) -> dict[str, tuple[str, str | None]]:
    """{other component named alike: (its endpoint, the model it runs)}."""
    cut = model_base(component)
    rivals = {}
    for item in _listed(sm, NameContains=cut[:-len("-ic")]):
        name = item["InferenceComponentName"]
        if name != component and model_base(name) == cut:
            spec = (describe_component(sm, name) or {}).get("Specification") or {}
            rivals[name] = (item["EndpointName"], spec.get("ModelName"))
    return rivals


def _not_ours(sm, arn: str, name: str, endpoint: str, component: str, rivals: dict
              ) -> str | None:
    """Why ``name`` is not ours ("" when it is gone), or None when it is.  A model made
    since models carry ``names.COMPONENT_TAG`` says whose it is; an older one is judged by
    its endpoint tag and the components named alike."""
    runs = [r for r, (_, model) in rivals.items() if model == name]
    if runs:
        return f"component {runs[0]} runs it"
    tags = resources.tags_of(sm, arn)
    if tags is None:
        return ""
    tagged = tags.get(names.TAG)
    if tagged and tagged != endpoint:
        return f"tagged for endpoint {tagged}"
    owner = tags.get(names.COMPONENT_TAG)
    if owner:
        return None if owner == component else f"made for component {owner}"
    alike = [r for r, (on, _) in rivals.items() if tagged in (None, on)]
    return (f"component {alike[0]} has the same 37-character name prefix" if alike
            else None)


def delete(aws, endpoint: str, component: str, *, timeout: float = 900,
           poll: float = 10) -> list[tuple[str, str]]:
    """Remove a component, its scaling and models; the endpoint only if it is now empty."""
    sm = aws.client("sagemaker")
    current = resources.describe(sm, endpoint)
    if current and not hosts_components(sm, current):
        raise UserError(f"endpoint {endpoint} serves a model directly and has no inference"
                        f" components: nothing named {component} to delete there (delete the"
                        " endpoint without a component name)")
    found = describe_component(sm, component)
    if found and found.get("EndpointName") != endpoint:
        raise UserError(f"component {component} runs on endpoint {found.get('EndpointName')},"
                        f" not {endpoint}")
    if found and found["InferenceComponentStatus"] in ("Creating", "Updating"):
        found = wait_settled(sm, component, timeout, poll)  # SageMaker refuses it until then
    results = [("component autoscaling", component_scaling.remove(aws, component)),
               ("rollback alarms", guardrails.remove_alarms(
                   aws, guardrails.component_owner(component)))]
    outcome = _delete_component(sm, found, component)
    results.append((f"inference component {component}", outcome))
    if outcome.startswith("failed"):
        # Still there: its models and endpoint stay, and the report says why.
        return results + [(f"models and endpoint of {component}", "kept (the component"
                                                                   " was not deleted)")]
    if found:
        wait_gone(sm, component, timeout, poll, failed_before=_status(found) == "Failed")
    running = ((found or {}).get("Specification") or {}).get("ModelName")
    models, kept = models_of(sm, endpoint, component, running)
    results += [(f"model {name}", resources.delete(sm.delete_model, ModelName=name))
                for name in sorted(models)] + sorted(kept.items())
    others = [c["InferenceComponentName"] for c in components_on(sm, endpoint)
              if c["InferenceComponentName"] != component]
    if others:
        results.append((f"endpoint {endpoint}", f"kept ({len(others)} other components:"
                                                f" {', '.join(sorted(others))})"))
        return results
    return results + delete_endpoint(sm, endpoint)


def delete_endpoint(sm, endpoint: str) -> list[tuple[str, str]]:
    current = resources.describe(sm, endpoint)
    configs, _, kept = resources.endpoint_resources(sm, endpoint, current)
    results = [(f"endpoint {endpoint}",
                resources.delete(sm.delete_endpoint, EndpointName=endpoint))]
    return results + [(f"endpoint config {name}", resources.delete(
        sm.delete_endpoint_config, EndpointConfigName=name)) for name in sorted(configs)
                      ] + sorted(kept.items())


def _status(description: dict | None) -> str | None:
    return (description or {}).get("InferenceComponentStatus")


def _delete_component(sm, found: dict | None, component: str) -> str:
    """DeleteInferenceComponent's outcome for the report; a component already Deleting is
    only waited for (SageMaker refuses a second delete)."""
    if _status(found) == "Deleting":
        return "deleting (asked before)"
    return resources.delete(sm.delete_inference_component, InferenceComponentName=component)


def wait_settled(sm, component: str, timeout: float, poll: float) -> dict:
    """A component Creating or Updating, until it is InService or Failed (a deploy run with
    --no-wait leaves it so, and SageMaker deletes no component mid-change)."""
    print(f"waiting for {component} to finish before deleting it")
    return wait(lambda: describe_component(sm, component)
                or {"InferenceComponentStatus": "Deleted"},
                lambda d: _status(d) not in ("Creating", "Updating"),
                lambda d, s: f"{component}: {_status(d)} ({s:.0f} s)",
                lambda d: f"component {component} is still {_status(d)} after"
                          f" {timeout:.0f} s; nothing was deleted", timeout, poll)


def wait_gone(sm, component: str, timeout: float, poll: float,
              failed_before: bool = False) -> None:
    """An endpoint cannot be deleted while a component on it is still Deleting.
    ``failed_before``: the component was Failed already, so reading Failed just after the
    delete is its old state, not the delete's outcome."""
    wait(lambda: describe_component(sm, component) or {"InferenceComponentStatus": "Deleted"},
         lambda d: judge_deleted(d, failed_before),
         lambda d, s: f"{component}: {_status(d)} ({s:.0f} s)",
         lambda d: f"component {component} is still {_status(d)} after"
                   f" {timeout:.0f} s", timeout, poll)


def judge_deleted(description: dict, failed_before: bool = False) -> bool:
    status = _status(description)
    if status == "Failed" and not failed_before:
        raise WaitFailed(f"deleting component {description.get('InferenceComponentName')}"
                         f" failed: {description.get('FailureReason') or 'no reason given'}")
    return status == "Deleted"


def status_rows(sm, endpoint: str) -> list[tuple[str, str]]:
    """One row per component on the endpoint: status, copies."""
    rows = []
    for item in components_on(sm, endpoint):
        name = item["InferenceComponentName"]
        found = describe_component(sm, name) or {}
        runtime = found.get("RuntimeConfig", {})
        model = found.get("Specification", {}).get("ModelName", "?")
        rows.append(("component", f"{name}: {item['InferenceComponentStatus']},"
                                  f" {runtime.get('CurrentCopyCount', '?')}/"
                                  f"{runtime.get('DesiredCopyCount', '?')} copies, {model}"))
    return rows


def refuse_if_hosting(sm, endpoint: str) -> None:
    """``delete`` without COMPONENT on an endpoint with components: name them."""
    hosted = sorted(c["InferenceComponentName"] for c in components_on(sm, endpoint))
    if hosted:
        raise UserError(f"endpoint {endpoint} hosts inference components"
                        f" ({', '.join(hosted)}): delete them one by one with COMPONENT=...;"
                        " the endpoint goes with the last")

