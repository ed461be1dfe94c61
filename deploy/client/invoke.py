"""``invoke``: rerank documents with a deployed endpoint (or a local server) and print a table."""

from __future__ import annotations

import json
from pathlib import Path

from deploy import config as cfg
from deploy.errors import UserError
from deploy.sagemaker import locations
from deploy.sagemaker.aws import runtime_session, translate_errors


@translate_errors
def run(args) -> int:
    """No credentials, no network, AWS refusals: translate_errors makes them one line."""
    from deploy.client import RerankClient, RerankClientError

    config = cfg.load(args)
    documents = list(args.documents) + _read_documents(args.documents_file)
    if not documents:
        raise UserError("no documents: pass --documents a b c or --documents-file FILE")
    try:
        client = RerankClient(config.endpoint, region=config.region,
                              session=runtime_session(config, config.endpoint_url),
                              endpoint_url=config.endpoint_url,
                              serverless=args.serverless, max_documents=args.max_documents,
                              s3_endpoint_url=config.s3_endpoint_url or config.endpoint_url,
                              inference_component=config.component)
        if args.use_async:
            results = client.rerank_async(args.query, documents, args.top_n,
                                          input_location=_input_location(args, config),
                                          instruction=args.instruction)
        else:
            results = client.rerank(args.query, documents, args.top_n,
                                    instruction=args.instruction)
    except (ValueError, RerankClientError, TimeoutError) as exc:
        raise UserError(f"{config.endpoint}: {exc}") from None
    if args.json:
        print(json.dumps(results))
    else:
        _table(results, documents)
    return 0


def _input_location(args, config: cfg.DeployConfig) -> str:
    if args.input_location:
        locations.s3_uri(args.input_location, "--input-location")
        return args.input_location
    if not config.bucket:
        raise UserError("async needs --input-location s3://... (or BUCKET)")
    return f"s3://{config.bucket}/{config.prefix.strip('/')}/async-inputs/"


def _read_documents(path: str | None) -> list:
    if not path:
        return []
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"--documents-file {path} is not UTF-8 text (byte {exc.start}):"
                        " save it as UTF-8") from None
    except OSError as exc:
        raise UserError(f"cannot read --documents-file {path}:"
                        f" {exc.strerror or type(exc).__name__}") from None
    if path.endswith(".json"):
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise UserError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, list):
            raise UserError(f"{path} must hold a JSON list of documents")
        return data
    return [line for line in text.splitlines() if line.strip()]


def _table(results: list[dict], documents: list) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for name, justify in (("rank", "right"), ("index", "right"), ("score", "right"),
                          ("document", "left")):
        table.add_column(name, justify=justify)
    for rank, item in enumerate(results, 1):
        doc = documents[item["index"]]
        text = doc if isinstance(doc, str) else json.dumps(doc)
        # Text, never markup: "[citation needed]" stays, "[/x]" does not end the command.
        table.add_row(str(rank), str(item["index"]), f"{item['relevance_score']:.4f}",
                      Text(text[:100] + ("..." if len(text) > 100 else "")))
    Console().print(table)
