"""Every command's arguments; what each one runs is named as "module:function".

The deploy settings (region, role, instance type, ...) come from deploy.cli.settings; the
rest are a command's own.  Handlers are imported only when their command runs, so
``--help`` and one command never load another's libraries.
"""

from __future__ import annotations

import os
from pathlib import Path

from deploy.cli.settings import COMMANDS, add_container_env, add_settings
from deploy.paths import BUILD_DIR, DEFAULT_ARCHIVE


def package(sub) -> None:
    p = sub.add_parser("package", help="build a checked, reproducible model.tar.gz",
                       description="A hub id, a model directory or an archive in; a checked"
                       " model.tar.gz out.")
    p.add_argument("model", help="hub id (org/name), model directory, or a model.tar.gz")
    p.add_argument("--output", "-o", default=str(DEFAULT_ARCHIVE), help="archive path")
    p.add_argument("--revision", help="hub revision to pin: branch, tag or commit"
                   " (make REVISION=)")
    p.add_argument("--model-id", help="name recorded in reranker.json (default: hub id or"
                   " the directory's name)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="accept pytorch_model.bin weights (loaded weights-only, converted to"
                   " safetensors); refused by default")
    p.add_argument("--onnx", choices=["fp32", "int8"], help="also export an ONNX model")
    p.add_argument("--onnx-tolerance", type=float,
                   help="largest score difference from torch the export may show")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip loading the model with the engine (not recommended)")
    p.set_defaults(handler="deploy.package.packaging:run")

    i = sub.add_parser("inspect", help="list a model.tar.gz and its manifest; --check loads it")
    i.add_argument("archive", nargs="?", default=str(DEFAULT_ARCHIVE))
    i.add_argument("--check", action="store_true", help="extract safely and score one pair")
    i.set_defaults(handler="deploy.package.inspection:run_inspect")


def _command(sub, name: str, handler: str, about: str, description: str | None = None):
    """A sub-parser running ``handler``, with the deploy settings ``name`` takes (if any)."""
    parser = sub.add_parser(name, help=about, description=description or about,
                            allow_abbrev=False)
    if name in COMMANDS:
        add_settings(parser, name)
    parser.set_defaults(handler=handler)
    return parser


def upload(sub) -> None:
    _command(sub, "upload", "deploy.sagemaker.upload:run",
             "upload model.tar.gz to S3 (skipped if present)",
             "Upload model.tar.gz to S3 under a key named by its sha256, skipped when already"
             " there.")


def endpoint(sub) -> None:
    _add_run_arguments(_command(sub, "deploy", "deploy.sagemaker.endpoints:run_deploy",
                                "create or update the SageMaker endpoint",
                                "Create or update a SageMaker endpoint without downtime."))
    _command(sub, "status", "deploy.sagemaker.status:run_status",
             "show the endpoint, its model (or inference components) and autoscaling")
    delete = _command(sub, "delete", "deploy.sagemaker.teardown:run_delete",
                      "remove endpoint, endpoint configs and models (--component: one"
                      " inference component; the endpoint goes with the last)")
    delete.add_argument("--purge", action="store_true",
                        help="also delete the model archives in S3")


def cloudformation(sub) -> None:
    p = _command(sub, "cloudformation", "deploy.sagemaker.cloudformation:run_template",
                 "write the endpoint deploy would make as a CloudFormation template",
                 "Upload the archive if needed and write the endpoint `deploy` would make"
                 " (model, endpoint config, rollback alarms, autoscaling) as a"
                 " CloudFormation template.")
    add_container_env(p)
    p.add_argument("--out", type=Path, help="template path (default:"
                   " build/cloudformation/<endpoint>.json)")


def transform(sub) -> None:
    _add_run_arguments(_command(sub, "transform", "deploy.sagemaker.transform:run_transform",
                                "rerank S3 jsonlines with Batch Transform",
                                "Rerank a whole corpus offline with SageMaker Batch"
                                " Transform."))


def _add_run_arguments(parser) -> None:
    """What creates resources takes besides its settings: --env, --no-wait, the policies."""
    add_container_env(parser)
    parser.add_argument("--no-wait", dest="wait", action="store_false",
                        help="return once the request is accepted")
    parser.add_argument("--print-role-policy", action="store_true",
                        help="print the execution role's least-privilege policy and exit")
    parser.add_argument("--print-trust-policy", action="store_true",
                        help="print the execution role's trust policy and exit")


def invoke(sub) -> None:
    p = _command(sub, "invoke", "deploy.client.invoke:run", "rerank documents with the endpoint",
                 "Rerank documents with a deployed endpoint (or a local server) and print a"
                 " table.")
    p.add_argument("--query", "-q", required=True, help="the search query")
    p.add_argument("--documents", "-d", nargs="+", default=[], metavar="DOC",
                   help="the documents to rerank, each one argument")
    p.add_argument("--documents-file", help="one document per line, or a JSON list")
    p.add_argument("--top-n", type=int, help="keep the best N (default: all, best first)")
    p.add_argument("--instruction", help="what an LLM reranker should judge by (Qwen3-Reranker,"
                   " chat-template rerankers; a cross-encoder refuses it)")
    p.add_argument("--serverless", action="store_true", help="use the 4 MB serverless limit")
    p.add_argument("--max-documents", type=int, default=1000,
                   help="documents per request (the server's RERANK_MAX_DOCUMENTS)")
    p.add_argument("--async", dest="use_async", action="store_true",
                   help="async endpoint: send through S3 and wait for the result")
    p.add_argument("--input-location", help="async: s3:// prefix for requests (default:"
                   " s3://<bucket>/<prefix>/async-inputs/)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")


def evaluate(sub) -> None:
    p = _command(sub, "evaluate", "deploy.evaluation.command:run",
                 "measure the reranker on relevance judgments (nDCG@10, MRR@10)",
                 "Rerank each judged query's first-stage candidates with the endpoint (and"
                 " any --compare) and print nDCG@10, MRR@10 and Recall@10 beside the first"
                 " stage's.")
    p.add_argument("--data", required=True, type=Path,
                   help="BEIR-format folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv")
    p.add_argument("--split", default="test", help="qrels file to judge by (default: test)")
    p.add_argument("--run", type=Path, help="first-stage run, TREC format (qid Q0 docid rank"
                   " score tag); default: BM25 over the corpus")
    p.add_argument("--depth", type=int, default=100,
                   help="candidates reranked per query (default 100)")
    p.add_argument("--max-queries", type=int, help="judge only the first N queries")
    p.add_argument("--model", help="measure a local model instead of the endpoint (a"
                   " directory, model.tar.gz or hub id, scored in this process)")
    p.add_argument("--compare", action="append", default=[],
                   metavar="ENDPOINT[/COMPONENT]|URL|model:PATH",
                   help="another reranker to measure on the same candidates; repeatable")
    p.add_argument("--instruction", help="sent with every request to the endpoint (or"
                   " --model), an LLM reranker that follows one; --compare the same reranker"
                   " to measure what it changes")
    p.add_argument("--concurrency", type=int, default=4, help="queries in flight (default 4)")
    p.add_argument("--max-documents", type=int, default=1000,
                   help="documents per request (the server's RERANK_MAX_DOCUMENTS)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the measures as JSON")
    p.add_argument("--save-runs", type=Path, metavar="DIR",
                   help="write every ranking as a TREC run file")
    p.add_argument("--chart", type=Path, metavar="PNG", help="also draw the measures")


def capture_export(sub) -> None:
    p = _command(sub, "capture-export", "deploy.evaluation.captured:run",
                 "turn the endpoint's captured requests into an evaluation set to judge",
                 "Read the endpoint's data capture (CAPTURE=s3://...) and write its queries"
                 " and candidates as a BEIR folder, a first-stage run and a file to judge.")
    p.add_argument("--out", required=True, help="folder to write")
    p.add_argument("--max-records", type=int, default=1000,
                   help="captured requests to read, newest first (default 1000)")


def loadtest(sub) -> None:
    p = _command(sub, "loadtest", "deploy.client.loadtest:run",
                 "measure throughput and latency per concurrency; suggest TARGET_INVOCATIONS",
                 "Send bounded closed-loop load at several concurrency levels, print"
                 " requests/s, pairs/s and latency percentiles, and the autoscaling target"
                 " that keeps p99 within --p99-ms.  Every request is a billed invocation.")
    p.add_argument("--documents", type=int, default=25, help="documents per request"
                   " (default 25)")
    p.add_argument("--words", type=int, default=120, help="words per document"
                   " (default 120, about 160 tokens)")
    p.add_argument("--query-words", type=int, default=8, help="words per query (default 8)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8, 16],
                   help="client counts to try (default 1 2 4 8 16)")
    p.add_argument("--requests", type=int, default=200,
                   help="most requests per level (default 200)")
    p.add_argument("--seconds", type=float, default=60.0,
                   help="most seconds per level (default 60)")
    p.add_argument("--p99-ms", type=float, default=500.0,
                   help="the latency objective (default 500 ms)")
    p.add_argument("--instances", type=int, default=1,
                   help="instances behind the endpoint now (the target is per instance)")
    p.add_argument("--price-per-hour", type=float, metavar="USD",
                   help="the instances' price per hour: also print what 1,000 requests and"
                        " a million documents cost at the best level")
    p.add_argument("--repeat", type=float, default=0.0, metavar="FRACTION",
                   help="share of requests that repeat an earlier one (0..1, default 0:"
                        " every request new), for an endpoint with RERANK_CACHE_ROWS: your"
                        " traffic's repeat rate")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the levels as JSON")
    p.add_argument("--chart", type=Path, metavar="PNG",
                   help="also draw requests/s and p99 per concurrency")


def ecr_login(sub) -> None:
    p = _command(sub, "ecr-login", "deploy.sagemaker.ecr:run_login",
                 "print the docker login password for an ECR repository (make docker-push)",
                 "Check that an ECR repository exists and print the docker login password for"
                 " its registry.")
    p.add_argument("repository", help="<account>.dkr.ecr.<region>.amazonaws.com/<name>")


def opensearch(sub) -> None:
    from deploy.integrations.opensearch.patterns import PATTERNS
    from deploy.integrations.opensearch.target import FLAVOURS

    about = "write OpenSearch connector, model and search-pipeline JSON for an endpoint"
    p = sub.add_parser("opensearch", help=about,
                       description=about + "; --apply sends one pattern to OPENSEARCH_URL")
    p.add_argument("--endpoint", required=True, help="SageMaker endpoint name")
    p.add_argument("--region", default=os.environ.get("AWS_REGION")
                   or os.environ.get("AWS_DEFAULT_REGION"),
                   help="the endpoint's region (default: AWS_REGION)")
    p.add_argument("--role-arn", help="IAM role the connector assumes (Amazon OpenSearch Service)")
    p.add_argument("--account", help="AWS account id, when no --role-arn (self-managed)")
    p.add_argument("--flavour", choices=FLAVOURS, default="aws",
                   help="aws: Amazon OpenSearch Service (default); self-managed: your cluster")
    p.add_argument("--document-field", dest="document_fields", action="append",
                   metavar="FIELD", help="field(s) of _source the model reads (default: text);"
                   " repeat for several, joined in order")
    p.add_argument("--index", default="my-index", help="index in the example searches")
    p.add_argument("--component", help="the inference component to call, on an endpoint"
                   " deployed with MODE=component")
    p.add_argument("--instruction", help="an LLM reranker's task instruction, written into"
                   " every connector's request body (default: the endpoint's own)")
    p.add_argument("--out", type=Path, help="folder (default: build/opensearch/<endpoint>)")
    p.add_argument("--apply", action="store_true",
                   help="create connector, model and pipeline on OPENSEARCH_URL")
    p.add_argument("--pattern", choices=sorted(PATTERNS), default="cohere",
                   help="what --apply creates (default: cohere, the recommended one)")
    p.add_argument("--send-aws-credentials", action="store_true",
                   help="self-managed --apply: put the current AWS session's keys into the"
                   " create-connector request (never into a file)")
    p.add_argument("--opensearch-region", help="the domain's region for SigV4 (default: --region)")
    p.add_argument("--wait", type=float, default=300, metavar="SECONDS",
                   help="--apply: how long to wait for the model to deploy")
    p.set_defaults(handler="deploy.integrations.opensearch.cli:run")


def elasticsearch(sub) -> None:
    about = "write Elasticsearch inference-endpoint, search and IAM JSON for an endpoint"
    p = sub.add_parser("elasticsearch", help=about, description=about + " (Elasticsearch"
                       " 8.19 / 9.1+, the amazon_sagemaker service's elastic API)")
    p.add_argument("--endpoint", required=True, help="SageMaker endpoint name")
    p.add_argument("--region", default=os.environ.get("AWS_REGION")
                   or os.environ.get("AWS_DEFAULT_REGION"),
                   help="the endpoint's region (default: AWS_REGION)")
    p.add_argument("--account", help="the endpoint's AWS account id (for the IAM policy)")
    p.add_argument("--inference-id", help="Elasticsearch inference id (default:"
                   " <endpoint>-rerank)")
    p.add_argument("--document-field", default="text",
                   help="the text field each hit is scored on (default: text)")
    p.add_argument("--index", default="my-index", help="index in the example search")
    p.add_argument("--component", help="inference component on the endpoint, if any")
    p.add_argument("--rank-window", type=int, default=25,
                   help="hits reranked per search (default 25)")
    p.add_argument("--out", type=Path, help="folder (default: build/elasticsearch/<endpoint>)")
    p.set_defaults(handler="deploy.integrations.elasticsearch.cli:run")


def vespa(sub) -> None:
    p = sub.add_parser(
        "vespa", help="write a Vespa application package (BM25 + cross-encoder global phase)",
        description="A Vespa application package that reranks with the model.")
    p.add_argument("--model-dir", required=True, help="model directory (config.json,"
                   " tokenizer.json, model.safetensors; onnx/ is used when present)")
    p.add_argument("--out", default=str(BUILD_DIR / "vespa"), help="package directory")
    p.add_argument("--onnx", choices=["auto", "fp32", "int8"], default="auto",
                   help="which ONNX model to ship; auto: int8 if the model directory has"
                   " one, else fp32 (exported now if missing; int8 when fp32 passes 2 GB)")
    p.add_argument("--onnx-file", type=Path, default=None,
                   help="ship this ONNX file instead (e.g. the model's own"
                   " onnx/model_quantized.onnx), after checking its scores against torch")
    p.add_argument("--onnx-tolerance", type=float, default=None,
                   help="largest score difference from torch for an export now (default"
                   " 0.05 for int8, 1e-4 for fp32) or for --onnx-file (default 0.05); a"
                   " file already in the model's onnx/ is shipped as it is")
    p.add_argument("--rerank-count", type=int, default=100,
                   help="hits the global phase rescores per query (default 100)")
    p.add_argument("--max-length", type=int, default=256,
                   help="tokens per query+document sequence (default 256, capped by the model)")
    p.add_argument("--query-tokens", type=int, default=32,
                   help="query budget: longer queries are cut to it (default 32)")
    p.add_argument("--document-tokens", type=int, default=None,
                   help="document budget, fixed at feed time (default: what --max-length"
                   " leaves after the query); given, it sets the sequence length instead")
    p.add_argument("--app-name", default="reranker", help="application name (a-z, 0-9)")
    p.set_defaults(handler="deploy.integrations.vespa:run")


# In the order `--help` lists them: the user's path from a model to a search engine.
REGISTER = (package, upload, endpoint, cloudformation, transform, invoke, evaluate,
            capture_export, loadtest, ecr_login, opensearch, elasticsearch, vespa)
