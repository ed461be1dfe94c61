"""``loadtest``: how much an endpoint sustains within a latency objective, and the autoscaling
target that follows from it.

    python -m deploy loadtest --endpoint reranker --documents 25 --p99-ms 300
    python -m deploy loadtest --endpoint-url http://127.0.0.1:8080 --concurrency 1 4 16

At each concurrency level, that many clients send rerank requests of the given shape through
boto3's ``sagemaker-runtime`` client (closed loop: each sends its next request when the
last one answered) until ``--requests`` were sent or ``--seconds`` passed, and the table
shows requests/s, pairs/s and latency percentiles.  The highest throughput whose p99 meets
``--p99-ms`` without errors gives the autoscaling targets: ``TARGET_CONCURRENCY`` (that
level's clients x a safety factor (0.5), per instance: SageMaker's 10-second concurrency
metric, which adds instances within seconds of a burst) and ``TARGET_INVOCATIONS`` (AWS's
formula for SageMakerVariantInvocationsPerInstance: requests/s x 60 x 0.5, per instance).
Every request's text is new, so no cache answers it (``--repeat`` sends that share of
earlier requests again, to measure an endpoint's score cache at your traffic's repeat rate).
Every request is a real invocation: on AWS, it is billed and shares the endpoint with its
traffic.
"""

from __future__ import annotations

import json
import math
import random
import sys
import threading
import time
from dataclasses import asdict, dataclass

from deploy import config as cfg
from deploy import outputs
from deploy.errors import UserError
from deploy.sagemaker.aws import error_code, runtime_session, translate_errors

# AWS's load-testing guide for SageMakerVariantInvocationsPerInstance; the same headroom
# for the concurrency target.
SAFETY_FACTOR = 0.5
# Common English words: documents of N words tokenize like text (about 1.3 tokens a word).
WORDS = ("the of and to in is was for on that with as by it at from his an were are which this"
         " be has had one new first their also after two its who but they her been other when"
         " time during there into school more may years over only year most would world city"
         " some where between later three state such then national used made known under many"
         " university united while part season team these american than film second born south"
         " became states war through being including both before north high however people"
         " family early history album area them series against until since district county"
         " name work life group music following number company several four called played"
         " released career league game government house each based day same won use station"
         " club international town located population general college east found age march"
         " end september").split()


@dataclass
class Level:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    requests_per_s: float
    pairs_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float


@translate_errors
def run(args) -> int:
    _check(args)
    config = cfg.load(args)
    runtime = _runtime(config, max(args.concurrency))
    target = {"InferenceComponentName": config.component} if config.component else {}
    repeats = f", {args.repeat:.0%} repeating an earlier one" if args.repeat else ""
    print(f"sending up to {args.requests} requests per level to"
          f" {config.endpoint_url or config.endpoint} ({args.documents} documents of"
          f" {args.words} words each{repeats})")
    levels, stopped = _sweep(runtime, config.endpoint, target, args)
    best = _best(levels, args.p99_ms)
    _table(levels, best, args)
    if args.json:
        report = {**_report(levels, best, args), **({"stopped": stopped} if stopped else {})}
        outputs.write_text(args.json, json.dumps(report, indent=2) + "\n", "--json")
    if args.chart:
        print(f"chart: {draw(levels, best, args)}")
    return 1 if stopped else 0


def _sweep(runtime, endpoint: str, target: dict, args) -> tuple[list[Level], str | None]:
    """The levels measured, and why the sweep stopped short (None: it did not).  A level
    whose every request failed ends it: the first one measured nothing (one line); a later
    one leaves the levels before it (billed already) to report, with exit status 1."""
    levels = []
    for number, concurrency in enumerate(args.concurrency):
        # Request numbers go on across levels: no level repeats another's requests.
        first = number * args.requests
        try:
            level = _level(runtime, endpoint, target, first, concurrency, args)
        except AllFailed as exc:
            if not levels:
                raise UserError(str(exc)) from None
            stopped = f"at {concurrency} clients {exc}"
            print(f"note: {stopped}; stopping here", file=sys.stderr)
            return levels, stopped
        levels.append(level)
        if level.p99_ms > 4 * args.p99_ms:
            break  # far past the objective: more clients only queue
    return levels, None


def _check(args) -> None:
    for name in ("documents", "words", "query_words", "requests", "instances"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
    if not args.concurrency or min(args.concurrency) < 1 or len(args.concurrency) > 8:
        raise UserError("--concurrency takes 1 to 8 levels, each at least 1")
    if args.seconds <= 0 or args.p99_ms <= 0:
        raise UserError("--seconds and --p99-ms must be positive")
    if args.price_per_hour is not None and args.price_per_hour <= 0:
        raise UserError("--price-per-hour must be positive (USD per instance-hour)")
    if not 0 <= args.repeat < 1:
        raise UserError(f"--repeat must be 0 or more and below 1 (a share of the requests),"
                        f" not {args.repeat:g}")
    # Where the results go can take them, before any (billed) request is sent.
    if args.json:
        outputs.check_file(args.json, "--json")
    if args.chart:
        args.chart = outputs.chart_path(args.chart, "--chart")
    args.concurrency = sorted(set(args.concurrency))


def _runtime(config: cfg.DeployConfig, clients: int):
    from botocore import UNSIGNED
    from botocore.config import Config

    boto = runtime_session(config, config.endpoint_url)
    # No retries: a throttle or 5xx counts as an error of its level, not as a slow answer.
    options = {"retries": {"mode": "standard", "total_max_attempts": 1},
               "max_pool_connections": clients, "read_timeout": 70, "connect_timeout": 10}
    if config.endpoint_url and boto.get_credentials() is None:
        options["signature_version"] = UNSIGNED  # a local server needs no credentials
    return boto.client("sagemaker-runtime", region_name=config.region or boto.region_name
                       or "us-east-1", endpoint_url=config.endpoint_url, config=Config(**options))


def request_body(number: int, args) -> bytes:
    """Request ``number`` (1, 2, ...): text no earlier request had, so no cache (the
    endpoint's RERANK_CACHE_ROWS included) answers it; with ``--repeat`` that share of the
    requests repeats an earlier one instead.  The same number always gives the same body."""
    while number > 1 and random.Random(number).random() < args.repeat:
        number = random.Random(-number).randrange(1, number)
    rng = random.Random(number)

    def text(n: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(n))

    return json.dumps({"query": text(args.query_words),
                       "documents": [text(args.words) for _ in range(args.documents)]}
                      ).encode()


def _level(runtime, endpoint: str, target: dict, first: int, concurrency: int,
           args) -> Level:
    from rich.console import Console
    from rich.progress import Progress

    latencies, failures = [], []
    lock, sent = threading.Lock(), [0]
    deadline = time.perf_counter() + args.seconds

    def claim() -> int | None:
        with lock:
            if sent[0] >= args.requests or time.perf_counter() >= deadline:
                return None
            sent[0] += 1
            return sent[0]

    def client(progress, task) -> None:
        while (n := claim()) is not None:
            body = request_body(first + n, args)
            began = time.perf_counter()
            error = _invoke(runtime, endpoint, target, body)
            with lock:
                (failures if error else latencies).append(error or time.perf_counter() - began)
            progress.advance(task)

    console = Console(stderr=True)  # stdout is the table's; no bar where no one watches
    with Progress(console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task(f"concurrency {concurrency}", total=args.requests)
        began = time.perf_counter()
        threads = [threading.Thread(target=client, args=(progress, task), daemon=True)
                   for _ in range(concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        seconds = time.perf_counter() - began
    _refuse_if_all_refused(latencies, failures)
    return _summary(concurrency, latencies, failures, seconds, args.documents)


def _invoke(runtime, endpoint: str, target: dict, body: bytes) -> str | None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        reply = runtime.invoke_endpoint(EndpointName=endpoint, Body=body,
                                        ContentType="application/json",
                                        Accept="application/json", **target)
        reply["Body"].read()
        return None
    except ClientError as exc:
        return f"{error_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}"[:300]
    except BotoCoreError as exc:
        return f"{type(exc).__name__}: {exc}"[:300]


class AllFailed(Exception):
    """Every request of a level failed: at the first level a wrong name or a 4xx for the
    request's shape (nothing measured, one line); later, the endpoint's limit."""


def _refuse_if_all_refused(latencies: list, failures: list[str]) -> None:
    if failures and not latencies:
        raise AllFailed(f"every request failed; the first: {failures[0]}")


def _summary(concurrency: int, latencies: list[float], failures: list, seconds: float,
             documents: int) -> Level:
    import numpy as np

    ms = np.asarray(latencies) * 1000
    rate = len(latencies) / seconds if seconds > 0 else 0.0
    return Level(concurrency=concurrency, requests=len(latencies), errors=len(failures),
                 seconds=round(seconds, 2), requests_per_s=rate, pairs_per_s=rate * documents,
                 p50_ms=float(np.percentile(ms, 50)), p90_ms=float(np.percentile(ms, 90)),
                 p99_ms=float(np.percentile(ms, 99)))


def _best(levels: list[Level], p99_ms: float) -> Level | None:
    ok = [lv for lv in levels if lv.errors == 0 and lv.p99_ms <= p99_ms]
    return max(ok, key=lambda lv: lv.requests_per_s, default=None)


def target_invocations(requests_per_s: float, instances: int) -> int:
    """AWS's SageMakerVariantInvocationsPerInstance for a measured rate over ``instances``."""
    return max(1, math.floor(requests_per_s * 60 * SAFETY_FACTOR / instances))


def target_concurrency(clients: int, instances: int) -> float:
    """SageMakerVariantConcurrentRequestsPerModelHighResolution's target: the clients of the
    best level per instance, with the same headroom (one decimal; the metric is an average)."""
    return max(0.1, round(clients * SAFETY_FACTOR / instances, 1))


def _targets(best: Level, instances: int) -> str:
    return (f"TARGET_CONCURRENCY={target_concurrency(best.concurrency, instances):g}"
            f" (or TARGET_INVOCATIONS={target_invocations(best.requests_per_s, instances)})")


def costs(best: Level, price_per_hour: float, instances: int) -> dict[str, float]:
    """USD per 1,000 requests and per million documents, with the instances busy at the
    best level's rate (idle hours cost the same and are not counted)."""
    per_second = price_per_hour * instances / 3600
    return {"usd_per_1000_requests": per_second / best.requests_per_s * 1000,
            "usd_per_million_documents": per_second / best.pairs_per_s * 1e6}


def _table(levels: list[Level], best: Level | None, args) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=_shape(args))
    for name in ("clients", "requests", "errors", "req/s", "pairs/s", "p50 ms", "p90 ms",
                 "p99 ms"):
        table.add_column(name, justify="right")
    for lv in levels:
        mark = " *" if lv is best else ""
        table.add_row(f"{lv.concurrency}{mark}", str(lv.requests), str(lv.errors),
                      f"{lv.requests_per_s:.1f}", f"{lv.pairs_per_s:.0f}", f"{lv.p50_ms:.0f}",
                      f"{lv.p90_ms:.0f}", f"{lv.p99_ms:.0f}")
    console = Console()
    console.print(table)
    if best is None:
        console.print(f"No level met p99 <= {args.p99_ms:g} ms without errors: use a larger"
                      " instance type, fewer documents per request, or a looser objective.")
        return
    clients = f"{best.concurrency} client{'s' if best.concurrency > 1 else ''}"
    console.print(f"* best within p99 <= {args.p99_ms:g} ms: {best.requests_per_s:.1f} req/s"
                  f" at {clients} over {args.instances} instance(s). Autoscaling target:")
    # One line, never wrapped, so it can be copied as it is.
    console.print(f"  make deploy ... MAX_CAPACITY=N {_targets(best, args.instances)}",
                  soft_wrap=True)
    if args.price_per_hour:
        cost = costs(best, args.price_per_hour, args.instances)
        console.print(f"At ${args.price_per_hour:g}/hour per instance, kept busy at that rate:"
                      f" ${cost['usd_per_1000_requests']:.4f} per 1,000 requests of"
                      f" {args.documents} documents, ${cost['usd_per_million_documents']:.2f}"
                      " per million documents")


def _shape(args) -> str:
    repeats = f", {args.repeat:.0%} repeated" if args.repeat else ""
    return f"{args.documents} documents x {args.words} words per request{repeats}"


def _report(levels: list[Level], best: Level | None, args) -> dict:
    return {"documents": args.documents, "words": args.words, "p99_objective_ms": args.p99_ms,
            "repeat": args.repeat, "instances": args.instances,
            "levels": [asdict(lv) for lv in levels],
            "best_concurrency": best.concurrency if best else None,
            "target_invocations": (target_invocations(best.requests_per_s, args.instances)
                                   if best else None),
            "target_concurrency": (target_concurrency(best.concurrency, args.instances)
                                   if best else None),
            "price_per_hour": args.price_per_hour,
            **(costs(best, args.price_per_hour, args.instances)
               if best and args.price_per_hour else {})}


def draw(levels: list[Level], best: Level | None, args):
    """requests/s and p99 per concurrency, the objective as a line, the best level marked."""
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt

    clients = [lv.concurrency for lv in levels]
    fig, (rate, tail) = plt.subplots(1, 2, figsize=(10, 3.6))
    rate.plot(clients, [lv.requests_per_s for lv in levels], marker="o")
    rate.set_ylabel("requests/s (higher is better)")
    tail.plot(clients, [lv.p99_ms for lv in levels], marker="o", color="#d62728")
    tail.axhline(args.p99_ms, color="#7f7f7f", linestyle="--",
                 label=f"objective {args.p99_ms:g} ms")
    tail.set_ylabel("p99 ms (lower is better)")
    tail.legend(fontsize=8)
    for ax in (rate, tail):
        ax.set_xscale("log", base=2)
        ax.set_xticks(clients, [str(c) for c in clients])
        ax.set_xlabel("concurrent clients")
        ax.set_ylim(bottom=0)
        if best:
            ax.axvline(best.concurrency, color="#2ca02c", linewidth=0.8)
    title = _shape(args)
    if best:
        title += f"; {_targets(best, args.instances)}"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    args.chart.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.chart, dpi=110)
    plt.close(fig)
    return args.chart
