"""`make gpu-check` / `bash bench/device/run.sh OUT`: the GPU path, checked and measured.

    python -m bench.gpu_check                          # on CUDA, sized for 8 minutes
    python -m bench.gpu_check --device cpu --quick     # the same code on a CPU (tests)

One JSON file, rewritten after every measurement, so a run stopped by its time limit
still returns what it finished.  Its sections, in the order they run:

1. environment: GPU, versions, where serving's packages were imported from;
2. gemm: the measured bf16 (and fp16) matrix-multiply rate, the yardstick for shares;
3. models:minilm, models:bge-large: per shape, parity of our engine (fp32 within 1e-5 of a
   plain forward; bf16/fp16 deviation and Kendall tau), pairs/s of our engine and of
   CrossEncoder in fp16 and bf16 on mixed-length 100-document and 25-document requests,
   peak GPU memory, share of the bf16 GEMM rate (bench/device/encoders.py);
4. oom: a batch over a real memory cap is halved and scores the same (bench/device/oom.py);
5. server: our server against Infinity at concurrency 1/8/32/128 (bench/device/servers.py);
6. llm:qwen3-0.6b: the Qwen3-Reranker shape, once the engine scores it as the model card
   does; skipped with the reason otherwise (bench/device/llm.py);
7. compiled: CUDA graphs and torch.compile against eager (bench/device/compiled.py).

A part that cannot run is recorded as skipped with its reason; one that fails records
its error and the rest still run.  Exit status 0 when every check that ran passed.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import time
from pathlib import Path

from . import closed_loop, models
from .device import kit
from .device.results import Budget, Results, Skip

# The budget counts from here, not from after `import torch` (a cold CUDA import takes
# seconds of the hard limit too).
STARTED = time.monotonic()
ROOT = models.ROOT
ENCODERS = ("minilm", "bge-large")
LLM = "qwen3-0.6b"
# Seconds each part needs on an H200 (measured or estimated): skipped below that.
NEEDS = {"gemm": 10, "models:minilm": 30, "models:bge-large": 60, "oom": 15, "server": 110,
         f"llm:{LLM}": 60, "compiled": 60}
# Seconds to compile (inductor, then CUDA graphs) both batch shapes of a model.
COMPILE_NEEDS = {"minilm": 60, "bge-large": 150}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_check",
                                description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--quick", action="store_true",
                   help="tiny shapes and few requests (the CPU dry run)")
    p.add_argument("--budget-s", type=float, default=None,
                   help="seconds for the whole check (default 390 on CUDA, 600 on CPU)")
    p.add_argument("--levels", default=None,
                   help="server concurrency levels (default 1,8,32,128; quick 1,4)")
    p.add_argument("--skip", default="", help="comma-separated sections to leave out")
    p.add_argument("--kit", type=Path, default=kit.KIT,
                   help="the device kit (tokenizer assets, manifest)")
    p.add_argument("--infinity-site", type=Path, default=None,
                   help="folder where the kit's Infinity wheels are installed")
    p.add_argument("--cache", type=Path, default=ROOT / "build" / "device-models",
                   help="where the model shapes are built")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = p.parse_args(argv)
    args.levels = closed_loop.parse_levels(
        p, args.levels or ("1,4" if args.quick else "1,8,32,128"))
    if args.budget_s is not None and args.budget_s <= 0:
        p.error(f"--budget-s must be positive, got {args.budget_s:g}")
    if args.budget_s is None:
        args.budget_s = 390.0 if args.device == "cuda" else 600.0
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not (args.kit / "assets").is_dir():
        print(f"gpu-check: no tokenizer assets in {args.kit}/assets: run `make device-kit`")
        return 2
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu-check: no CUDA device is visible (run with --device cpu to check the code)")
        return 2
    budget = Budget(args.budget_s, started=STARTED)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H%M%SZ")
    path = args.out / f"gpu-check-{args.device}-{stamp}.json"
    results = Results(path, {"device": args.device, "quick": args.quick,
                             "budget_s": args.budget_s, "levels": args.levels}, log=_log)
    _log(f"results: {path}")
    Check(args, results, budget).run()
    print(summary(results.data))
    print(f"results: {path}")
    return 0 if results.data["ok"] else 1


class Check:
    def __init__(self, args, results: Results, budget: Budget):
        self.args = args
        self.results = results
        self.budget = budget
        self.gemm = 0.0
        self.dirs: dict[str, Path] = {}

    def run(self) -> None:
        self.section("environment", self.environment)
        self.section("gemm", self.measure_gemm)
        for name in ENCODERS:
            self.section(f"models:{name}", lambda n=name: self.encoder(n))
        self.section("oom", lambda: self._oom())
        self.section("server", self.server)
        self.section(f"llm:{LLM}", self.llm)
        self.section("compiled", self.compiled)

    def verdict(self) -> None:
        """Targets and pass/fail so far: kept current, so a run cut short still has them."""
        data = self.results.data
        data["targets"] = collect_targets(data)
        data["elapsed_s"] = round(self.budget.elapsed(), 1)
        data["ok"] = passed(data)
        self.results.write()

    def section(self, name: str, run) -> None:
        if name in self.args.skip or name.split(":")[0] in self.args.skip:
            self.results.put(("sections", name), {"status": "skipped", "reason": "--skip"})
            self.verdict()
            return
        needs = 0.0 if self.args.quick else NEEDS.get(name, 0.0)
        self.results.section(name, run, self.budget, needs)
        self.verdict()

    def key(self, name: str) -> tuple[str, ...]:
        return ("sections", name)

    def model_dir(self, name: str) -> Path:
        if name not in self.dirs:
            from .device import shapes

            started = time.perf_counter()
            self.dirs[name] = shapes.build(
                name, self.args.cache / (name + ("-quick" if self.args.quick else "")),
                self.args.kit / "assets", quick=self.args.quick, device=self.args.device)
            _log(f"{name}: model ready in {time.perf_counter() - started:.1f} s")
        return self.dirs[name]

    def environment(self) -> dict:
        import torch

        from . import machine

        info = machine.describe(measure_gemm=False)
        origins = {}
        for module in ("reranker", "serving", "bench", "starlette", "uvicorn", "transformers",
                       "sentence_transformers", "torch"):
            try:
                origins[module] = str(Path(importlib.import_module(module).__file__).parent)
            except ImportError as exc:
                origins[module] = f"missing: {exc}"
        manifest = self.args.kit / "manifest.json"
        return {"machine": info, "imported_from": origins, "placement": _placement(),
                "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
                # torch 2.9+ says TF32 here too; fp32 parity at 1e-5 needs it off.
                "fp32_precision": str(getattr(torch.backends.cuda.matmul, "fp32_precision",
                                              None)),
                "sdp": {k: getattr(torch.backends.cuda, f"{k}_sdp_enabled")()
                        for k in ("flash", "mem_efficient", "math", "cudnn")
                        if hasattr(torch.backends.cuda, f"{k}_sdp_enabled")},
                "kit": json.loads(manifest.read_text()) if manifest.is_file() else None,
                "infinity_site": str(self.args.infinity_site or "")}

    def measure_gemm(self) -> dict:
        from . import machine

        gpu = self.args.device == "cuda"
        sizes = (4096, 8192) if gpu else (256 if self.args.quick else 1024,)
        seconds = 1.0 if gpu else 0.2
        rates = {dt: machine.gemm_rate(dt, device=self.args.device, sizes=sizes,
                                       seconds=seconds)
                 for dt in (("bfloat16", "float16") if gpu else ("bfloat16",))}
        self.gemm = rates["bfloat16"]
        return {"flops": rates, "sizes": list(sizes)}

    def encoder(self, name: str) -> dict:
        from .device import encoders

        model_dir = self.model_dir(name)
        return encoders.measure(model_dir, device=self.args.device, quick=self.args.quick,
                                heavy=name != "minilm", gemm_flops=self.gemm,
                                results=self.results, key=self.key(f"models:{name}"),
                                time_left=self.budget.left)

    def _oom(self) -> dict:
        from .device import oom

        if self.args.device != "cuda":
            raise Skip("no GPU memory to cap on a CPU")
        return oom.check(self.model_dir("minilm"), self.args.device, self.args.quick)

    def server(self) -> dict:
        from .device import servers

        name = "minilm" if self.args.quick else "bge-large"
        self.results.put(self.key("server") + ("model",), name)
        quick = self.args.quick
        return servers.measure(
            self.model_dir(name), device=self.args.device, levels=self.args.levels,
            max_requests=6 if quick else 400, max_seconds=4 if quick else 12,
            per_client=0 if quick else servers.PER_CLIENT,
            infinity_site=self.args.infinity_site, results=self.results,
            key=self.key("server"), time_left=self.budget.left)

    def llm(self) -> dict:
        from .device import llm

        return llm.measure(self.model_dir(LLM), device=self.args.device, quick=self.args.quick,
                           gemm_flops=self.gemm, results=self.results,
                           key=self.key(f"llm:{LLM}"), time_left=self.budget.left)

    def compiled(self) -> dict:
        from .device import compiled

        out = {}
        for name in (("minilm",) if self.args.quick else ENCODERS):
            needs = 0 if self.args.quick else COMPILE_NEEDS[name]
            if self.budget.left() < needs:
                out[name] = {"skipped": f"time budget: {self.budget.left():.0f} s left,"
                                        f" compiling needs about {needs} s"}
                continue
            out[name] = compiled.measure(
                self.model_dir(name), self.args.device, self.args.quick, self.budget.left,
                save=lambda shapes, n=name: self.results.put(
                    self.key("compiled") + ("models", n), {"shapes": shapes}))
            self.results.put(self.key("compiled") + ("models",), out)
        return {"models": out}


def _placement() -> dict:
    """What the engine chooses on this machine by itself: the devices it would load on, the
    dtype of `auto` there, and why a GPU would be unusable (None: nothing wrong)."""
    import torch

    from reranker import replicas
    from reranker.backends import torch_setup
    from reranker.settings import Settings

    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device = torch.device("cuda" if visible else "cpu")
    return {"devices": replicas.devices_for(Settings(), None, visible),
            "auto_dtype": torch_setup.pick_dtype("auto", device),
            # Asked only when torch sees no GPU, as the engine asks it.
            "unusable_gpu": None if visible else torch_setup.unusable_gpu(
                torch_setup.NVIDIA_DRIVER_FILE)}


def collect_targets(data: dict) -> dict:
    """The documented targets (docs/gpu.md), read from the sections that decide them."""
    sections = data.get("sections", {})
    out = {}
    for name, section in sections.items():
        for key, value in (section.get("targets") or {}).items():
            out[f"{name} {key}"] = value
    return out


def passed(data: dict) -> bool:
    """Every check that ran passed: fp32 parity, OOM halving, our server's answers, no
    section's error (Infinity's failures are recorded, not ours)."""
    ok = True
    for name, section in data.get("sections", {}).items():
        if section.get("status") == "error":
            ok = False
        if (section.get("targets") or {}).get("fp32_parity_ok") is False:
            ok = False
        if name == "oom" and section.get("status") == "ok" and not section.get("ok"):
            ok = False
        if name == "server":  # our server's errors fail the run; a peer's are its finding
            ours = (section.get("stacks") or {}).get("ours") or {}
            if ours.get("error") or any(row["errors"] for row in ours.get("levels", [])):
                ok = False
    return ok


def summary(data: dict) -> str:
    env = (data["sections"].get("environment") or {}).get("machine") or {}
    gpu = (env.get("gpu") or {}).get("name") or (env.get("cpu") or {}).get("model", "?")
    lines = [f"gpu-check on {data['device']} ({gpu}), {data.get('elapsed_s', 0):.0f} s"]
    gemm = (data["sections"].get("gemm") or {}).get("flops") or {}
    if gemm:
        lines.append("  GEMM: " + ", ".join(f"{k} {v / 1e12:.1f} TFLOP/s"
                                            for k, v in gemm.items()))
    for name, section in data["sections"].items():
        status = section.get("status")
        note = section.get("reason") or section.get("error") or ""
        lines.append(f"  {name}: {status} ({section.get('seconds', 0):.0f} s) {note}"[:300])
        for label, row in (section.get("peers") or {}).items():
            rates = ", ".join(f"{w} {row[w]['pairs_per_s']:.0f} pairs/s"
                              for w in ("mixed100", "rag25") if isinstance(row.get(w), dict))
            tau = (row.get("parity") or {}).get("kendall_tau_mean")
            lines.append(f"    {label}: {rates or row.get('skipped') or row.get('error')}"
                         + (f", tau {tau:.3f}" if tau is not None else ""))
        for stack, row in (section.get("stacks") or {}).items():
            levels = ", ".join(f"c={r['concurrency']} {r['rps']:.1f} rps p99"
                               f" {r['p99_ms'] or 0:.0f} ms" for r in row.get("levels", []))
            lines.append(f"    {stack}: {levels or row.get('skipped') or row.get('error')}")
    for key, value in data.get("targets", {}).items():
        lines.append(f"  target {key}: {value}")
    lines.append("OK" if data.get("ok") else "FAILED")
    return "\n".join(lines)


def _log(message: str) -> None:
    print(f"gpu-check: {message}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
