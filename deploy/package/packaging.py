"""``package``: a hub id, a model directory or an archive in; a checked model.tar.gz out.

Steps: fetch only config, tokenizer and safetensors files (hub) or take them from a
directory; convert pickle weights only when allowed; make sure tokenizer.json exists; load
the model with our engine and score one pair; write reranker.json (keeping the model's
own profile override); optionally export ONNX; write a reproducible model.tar.gz (model at
the root, code/ beside it) and print its sha256.
The steps live in deploy.package: fetch, verify and assemble; ``inspect`` in
deploy.package.inspection.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from deploy import outputs
from deploy.errors import UserError
from deploy.package import archive, assemble, fetch, model_kind, size_report, weights
from deploy.package import verify as checks


def run(args) -> int:
    out = outputs.check_file(args.output, "--output")  # before any download or check
    started = time.monotonic()
    exporter = checks.onnx_exporter() if args.onnx else None  # fail before any work
    # Staged beside the output, not in $TMPDIR: that is often RAM (tmpfs), and a model's
    # weights are copied where they cannot be hard-linked (another filesystem).
    beside = next(p for p in (out.parent.absolute(), *out.parent.absolute().parents)
                  if p.is_dir())
    with tempfile.TemporaryDirectory(prefix=".reranker-package-", dir=beside) as tmp:
        tmp = Path(tmp)
        source, info = fetch.resolve_source(args.model, args, tmp / "source")
        staging = tmp / "model"
        try:
            fetch.stage(source, staging, allow_pickle=args.allow_pickle)
        except OSError as exc:  # the disk filled (a copied 16 GB checkpoint), or a file went
            raise UserError(f"cannot stage the model's files in {beside}:"
                            f" {exc.strerror or exc}") from None
        # The model id, before the engine checks the model: it names an LLM reranker as one.
        fetch.note_model_id(staging, info["model_id"])
        config = checks.check_cross_encoder(staging)
        if exporter:
            model_kind.refuse_llm(config, "ONNX export", "package it without ONNX=")
        weights.files(staging)  # a sharded checkpoint's index names every shard present
        engine_info = checks.verify(staging) if args.check else {}
        onnx_report = checks.export_onnx(exporter, staging, args) if exporter else None
        manifest = assemble.build_manifest(info, config, engine_info, onnx_report, args)
        manifest.update(fetch.carried_settings(staging))  # the model's profile override
        # What `deploy` sizes instances by, without opening the weights again.
        manifest.update(llm=model_kind.is_llm(config),
                        parameters=weights.parameter_count(staging))
        (staging / archive.MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True)
                                                + "\n")
        code = tmp / "code"
        files = {**archive.collect(staging), **assemble.code_files(code, onnx=bool(args.onnx))}
        writing = time.monotonic()
        try:
            sha = assemble.write_with_progress(out, files)
        except OSError as exc:  # the disk filled, the folder went away meanwhile
            raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
        done = time.monotonic()
        report = size_report.lines(files, out, done - started, done - writing,
                                   manifest["parameters"])
    assemble.report(out, sha, manifest, len(files))
    if engine_info:
        print(f"{'checked':<11} loads with the engine and scores a test pair")
    print("\n".join(report))
    return 0
