"""The emitted connectors, rendered the way ml-commons renders them, fed to our real handler.

No OpenSearch runs here.  Everything named ``mlc_*`` below is OUR MODEL of ml-commons
(and of neural-search's rerank processors), written from their source, NOT OpenSearch:
- StringUtils.processTextDoc / gson.toJson: Gson string escaping, HTML escaping off;
- ConnectorUtils.escapeRemoteInferenceInputData: commons-text escapeJson on every
  parameter, except values StringUtils.isJson accepts (strict JSON objects/arrays here;
  ml-commons' org.json + lenient Gson also accept a few non-standard forms);
- HttpConnector.createPayload: Apache StringSubstitutor("${parameters.", "}"), recursive,
  '$' escape, ':-' defaults, cycle = error; then "Invalid payload" unless the result is JSON;
- the built-in cohere.rerank pre/post-process functions, DefaultPreProcessFunction, the
  Painless of pattern 2 read line by line into Python (``painless_*``), ModelTensor parsing,
  the ml_inference output_map and the float conversion of the rerank processors.
The bodies then go through code/inference.py's four hooks with a tiny model, and the
answers back through the post-process model: one float per document, in input order,
equal to scoring the same raw strings directly.

Source followed (opensearch-project/ml-commons at 950f05600, paths shortened):
- ml-algorithms/.../remote/ConnectorUtils.java: processInput (86-103) runs the pre-process
  then escapeRemoteInferenceInputData (177-205: values StringUtils.isJson accepts are kept,
  the others escapeJson'd); processMLInput (105-152) picks the built-in function, or for a
  text_similarity input escapeMLInput (154-175: query and docs through processTextDoc) and
  DefaultPreProcessFunction; fillProcessFunctionParameter (305-315).
- common/.../preprocess/DefaultPreProcessFunction.java process (44-61): the script's return
  parsed by Gson into a Map, then StringUtils.convertScriptStringToJsonString.
- common/.../utils/StringUtils.java: gson with disableHtmlEscaping (106-115), isJson
  (142-157), convertScriptStringToJsonString (374-393: strings kept, any other value
  gson.toJson'd; this is why a body object survives), processTextDoc (403-412).
- common/.../connector/HttpConnector.java createPayload (377-400): StringSubstitutor with
  "${parameters." and "}" over request_body (383-384), "Invalid payload" (386-387).
"""

from __future__ import annotations

import json
import os
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from deploy.integrations.opensearch import bundle, painless
from deploy.integrations.opensearch.patterns import PATTERNS
from deploy.integrations.opensearch.target import build

GOLDEN = Path(__file__).parent / "golden" / "opensearch"
TARGET = build("my-reranker", "us-east-1", role_arn="arn:aws:iam::123456789012:role/os-sagemaker",
               document_fields=["passage_text"])
FILES = bundle.files(TARGET)


def connector_file(key: str, files: dict[str, str] = FILES) -> dict:
    """The connector exactly as written to disk (what the user sends)."""
    return json.loads(files[f"{PATTERNS[key].folder}/01-create-connector.json"])


# --------------------------------------------------------------------------- escaping model
_GSON_SHORT = {'"': '\\"', "\\": "\\\\", "\t": "\\t", "\b": "\\b", "\n": "\\n", "\r": "\\r",
               "\f": "\\f", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_ESCAPE_JSON_SHORT = {'"': '\\"', "\\": "\\\\", "/": "\\/", "\b": "\\b", "\n": "\\n",
                      "\t": "\\t", "\f": "\\f", "\r": "\\r"}


def mlc_gson_escape(text: str) -> str:
    """Gson's string writer (disableHtmlEscaping): controls as \\u00xx, lowercase hex."""
    out = []
    for ch in text:
        if ch in _GSON_SHORT:
            out.append(_GSON_SHORT[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def mlc_gson_to_json(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return '"' + mlc_gson_escape(value) + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, list):
        return "[" + ",".join(mlc_gson_to_json(v) for v in value) + "]"
    return "{" + ",".join(mlc_gson_to_json(k) + ":" + mlc_gson_to_json(v)
                          for k, v in value.items()) + "}"


def mlc_escape_json(text: str) -> str:
    """commons-text StringEscapeUtils.escapeJson: outside 32..0x7e as \\uXXXX (UTF-16)."""
    out = []
    for ch in text:
        if ch in _ESCAPE_JSON_SHORT:
            out.append(_ESCAPE_JSON_SHORT[ch])
        elif ord(ch) < 32 or ord(ch) > 0x7E:
            units = ch.encode("utf-16-be")
            for i in range(0, len(units), 2):
                out.append(f"\\u{int.from_bytes(units[i:i + 2], 'big'):04X}")
        else:
            out.append(ch)
    return "".join(out)


def mlc_is_json(text: str | None) -> bool:
    """StringUtils.isJson: a JSON object or array (never a bare string or number)."""
    if text is None or not text.strip():
        return False
    try:
        return isinstance(json.loads(text), (dict, list))
    except ValueError:
        return False


def mlc_escape_parameters(params: dict) -> dict:
    """ConnectorUtils.escapeRemoteInferenceInputData."""
    return {k: v if v is None or mlc_is_json(v) else mlc_escape_json(v)
            for k, v in params.items()}


class SubstitutionLoop(Exception):
    pass


def mlc_substitute(template: str, params: dict, _seen: tuple = ()) -> str:
    """StringSubstitutor(params, "${parameters.", "}"): values are substituted again."""
    prefix, out, i = "${parameters.", [], 0
    while True:
        j = template.find(prefix, i)
        if j < 0:
            out.append(template[i:])
            return "".join(out)
        if j > 0 and template[j - 1] == "$":  # "$${parameters.x}" is the literal text
            out.append(template[i:j - 1] + prefix)
            i = j + len(prefix)
            continue
        end = template.find("}", j + len(prefix))
        if end < 0:
            out.append(template[i:])
            return "".join(out)
        name = template[j + len(prefix):end]
        key, _, default = name.partition(":-")
        value = params.get(key)
        if value is None and ":-" in name:
            value = default
        out.append(template[i:j])
        if value is None:
            out.append(template[j:end + 1])
        else:
            if key in _seen:
                raise SubstitutionLoop(f"Infinite loop in property interpolation of {key}")
            out.append(mlc_substitute(value, params, _seen + (key,)))
        i = end + 1


# ----------------------------------------------------------------------- pre-process model
def painless_tei_pre_process(params: dict, instruction_member: str = "") -> str:
    """painless.TEI_PRE_PROCESS, line by line (query and docs arrive already escaped): the
    whole request body under parameters.body; ``instruction_member`` is the literal that
    painless.tei_pre_process adds before the closing braces."""
    query = params["query_text"]                      # def query = params.query_text;
    docs = params["text_docs"]                        # def docs = params.text_docs;
    texts = "["                                       # new StringBuilder('[')
    for i in range(len(docs)):                        # for (int i = 0; i < docs.size(); i++)
        if i > 0:
            texts += ","
        texts += '"' + docs[i] + '"'                  # append('"').append(docs.get(i))...
    texts += "]"
    return ('{"parameters":{"body":{"query":"' + query + '","texts":' + texts
            + instruction_member + "}}}")


def painless_instruction_member(script: str) -> str:
    """The string literal an instruction adds to our Painless, as Painless reads it (a
    backslash escapes the next character); '' for the plain script.  The rest must be ours
    exactly."""
    import re

    match = re.fullmatch(r"(.*texts\.toString\(\)) \+ '((?:[^'\\]|\\.)*)'( \+ '\}\}\}';\n)",
                         script, re.S)
    if match is None:
        assert script == painless.TEI_PRE_PROCESS, "the model reads only our Painless"
        return ""
    assert match.group(1) + match.group(3) == painless.TEI_PRE_PROCESS
    return re.sub(r"\\(.)", r"\1", match.group(2))


def mlc_script_parameters(processed: dict) -> dict:
    """StringUtils.convertScriptStringToJsonString: strings kept, the rest gson.toJson."""
    return {k: v if isinstance(v, str) else mlc_gson_to_json(v)
            for k, v in processed.get("parameters", {}).items()}


def mlc_pre_process(function: str, query: str, docs: list[str]) -> dict:
    """A text_similarity input (what the rerank ml_opensearch processor sends)."""
    if function == "connector.pre_process.cohere.rerank":
        return mlc_script_parameters(
            {"parameters": {"query": query, "documents": docs, "top_n": len(docs)}})
    member = painless_instruction_member(function)
    # ConnectorUtils.escapeMLInput, then DefaultPreProcessFunction (XContent -> Gson map).
    params = {"algorithm": "REMOTE", "query_text": mlc_gson_escape(query),
              "text_docs": [mlc_gson_escape(d) for d in docs]}
    return mlc_script_parameters(json.loads(painless_tei_pre_process(params, member)))


def mlc_ml_inference_parameters(query: str, doc: str) -> dict:
    """MLInferenceSearchResponseProcessor, one_to_one: the input_map values go through
    ModelExecutor's ``{ "parameters": ${ml_inference.parameters} }`` (Jackson JSON, then
    MLInput.parse), so they arrive as the raw strings."""
    payload = '{ "parameters": ' + json.dumps({"text": query, "text_pair": doc}) + " }"
    return json.loads(payload)["parameters"]


def mlc_payload(connector: dict, *, query: str | None = None, docs: list[str] | None = None,
                remote: dict | None = None) -> str:
    """RemoteConnectorExecutor.preparePayloadAndInvoke + HttpConnector.createPayload."""
    action = connector["actions"][0]
    parameters = dict(connector.get("parameters") or {})
    inputs = {}
    if remote is not None:  # a RemoteInferenceInputDataSet (ml_inference, _predict)
        inputs = mlc_escape_parameters(remote)
        parameters.update(inputs)
        processed = mlc_escape_parameters(inputs)  # escaped twice here, then overridden
    else:
        processed = mlc_escape_parameters(
            mlc_pre_process(action["pre_process_function"], query, docs))
    parameters.update(processed)
    parameters.update(inputs)
    return mlc_substitute(action["request_body"], parameters)


class InvalidPayload(Exception):
    """HttpConnector.createPayload's IllegalArgumentException: the search fails with it."""


def mlc_send(connector: dict, **kwargs) -> str:
    """The payload, or the error ml-commons raises before anything is sent."""
    payload = mlc_payload(connector, **kwargs)
    try:
        json.loads(payload)
    except ValueError:
        raise InvalidPayload(f"Invalid payload: {payload}") from None
    return payload


# ---------------------------------------------------------------------- post-process model
class JavaInteger(int):
    pass


class JavaDouble(float):
    pass


class JavaBigDecimal(Decimal):
    pass


def java_float(text: str):
    """json-smart's extractFloat in MODE_PERMISSIVE (JsonPath's default parser): a literal of
    more than 18 characters is a BigDecimal, a shorter one a Double."""
    return JavaBigDecimal(text) if len(text) > 18 else JavaDouble(text)


def mlc_json(text: str):
    """json-smart: integer literals become Integer, the others Double or BigDecimal."""
    return json.loads(text, parse_int=JavaInteger, parse_float=java_float)


def java_double_to_string(x: float) -> str:
    """Double.toString: plain between 1e-3 and 1e7, else d.dddE-n."""
    if x == 0 or 1e-3 <= abs(x) < 1e7:
        return repr(float(x))
    sign, digits, exponent = Decimal(repr(float(x))).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    power = len(digits) + exponent - 1
    return ("-" if sign else "") + text[0] + "." + (text[1:] or "0") + f"E{power}"


def painless_tei_post_process(params: dict) -> str:
    """painless.TEI_POST_PROCESS, line by line."""
    results = params.get("result")                   # def results = params.result;
    if results is None or len(results) == 0:
        raise ValueError("the reranker returned no scores")
    scores = [0.0] * len(results)                    # double[] scores = new double[...]
    for item in results:                             # for (def item : results)
        assert isinstance(item["index"], (int, float)) and not isinstance(item["index"], bool)
        assert isinstance(item["score"], (int, float, Decimal))
        assert not isinstance(item["score"], bool)
        scores[int(item["index"])] = float(item["score"])  # ((Number) x).intValue() ...
    parts = ['{"name":"similarity","data_type":"FLOAT32","shape":[1],"data":['
             + java_double_to_string(s) + "]}" for s in scores]
    return "[" + ",".join(parts) + "]"


def mlc_cohere_post_process(response: str) -> list[dict]:
    """JsonPath $.results, then CohereRerankPostProcessFunction's casts."""
    results = mlc_json(response)["results"]
    assert results and "index" in results[0] and "relevance_score" in results[0]
    scores = [None] * len(results)
    for item in results:
        assert type(item["index"]) is JavaInteger, "(Integer) index would throw"
        assert type(item["relevance_score"]) is JavaDouble, "(Double) relevance_score would throw"
        scores[item["index"]] = float(item["relevance_score"])
    assert None not in scores, "a document without a score"
    return [{"name": "similarity", "data_type": "FLOAT32", "shape": [1], "data": [s]}
            for s in scores]


def mlc_tensors(connector: dict, response: bytes) -> list[dict]:
    """ConnectorUtils.processOutput: the model tensors a response becomes."""
    text = response.decode("utf-8")
    post = connector["actions"][0].get("post_process_function")
    if post == "connector.post_process.cohere.rerank":
        return mlc_cohere_post_process(text)
    if post is None:  # AbstractConnector.parseResponse: the JSON as dataAsMap
        return [{"name": "response", "dataAsMap": mlc_json(text)}]
    body = mlc_json(text)  # ScriptUtils: StringUtils.fromJson(response, "result")
    params = body if isinstance(body, dict) else {"result": body}
    return mlc_json(painless_tei_post_process(params))


def similarity_scores(tensors: list[dict]) -> list[float]:
    """neural-search: data[0].floatValue() of each tensor, in order."""
    for t in tensors:
        assert t["data_type"] == "FLOAT32" and len(t["data"]) == 1
    return [float(np.float32(t["data"][0])) for t in tensors]


def by_field_score(tensors: list[dict]) -> float:
    """ml_inference output_map {"rank_score": "$.score"} then by_field's numeric check."""
    value = tensors[0]["dataAsMap"]["score"]
    assert isinstance(value, float) and not isinstance(value, bool)
    return float(np.float32(value))


# ----------------------------------------------------------------------------- the handler
@pytest.fixture(scope="module")
def handler(bert_dir):
    import inference

    model = inference.model_fn(str(bert_dir))
    yield model
    model.close()


def invoke(model, body: str) -> tuple[int, bytes]:
    """The four hooks as a server calls them; a RerankError is the client's fault."""
    import inference
    from reranker.errors import RerankError

    try:
        request = inference.input_fn(body.encode("utf-8"), "application/json")
        result = inference.predict_fn(request, model)
        return 200, inference.output_fn(result, "application/json")
    except RerankError as exc:
        return exc.status, exc.to_json().encode()


def parsed_pairs(body: str) -> list[tuple[str, str]]:
    """What the handler will score, exactly: the strings must survive the trip unchanged."""
    import inference

    return inference.input_fn(body.encode("utf-8"), "application/json").pairs


def bodies(pattern: str, query: str, docs: list[str], files: dict[str, str] = FILES
           ) -> list[str]:
    """One search's worth of request bodies, as OpenSearch would send them."""
    connector = connector_file(pattern, files)
    if pattern == "ml-inference":  # one_to_one: one call per hit, text = query, text_pair = doc
        return [mlc_payload(connector, remote=mlc_ml_inference_parameters(query, d)) for d in docs]
    return [mlc_payload(connector, query=query, docs=docs)]


def rerank_through(pattern: str, model, query: str, docs: list[str],
                   files: dict[str, str] = FILES) -> list[float]:
    """Bodies -> handler -> post-process: the scores the rerank processor assigns, per hit."""
    connector = connector_file(pattern, files)
    scores = []
    for body in bodies(pattern, query, docs, files):
        json.loads(body)  # strictly valid JSON
        status, answer = invoke(model, body)
        assert status == 200, answer
        tensors = mlc_tensors(connector, answer)
        scores += [by_field_score(tensors)] if pattern == "ml-inference" else \
            similarity_scores(tensors)
    return scores


# ------------------------------------------------------------------------- hostile strings
CONTROL = "".join(map(chr, range(32))) + "\x7f"
HOSTILE_QUERIES = [
    'what is the "capital" of America?',
    "C:\\temp\\new folder\\ ends with a backslash \\",
    "line one\nline two\r\n\ttabbed\tout",
    "controls:" + CONTROL,
    "Grüße aus Köln, 東京, Ελληνικά, مرحبا, e\u0301, \u2028\u2029 separators",
    "emoji 🚀👩‍👩‍👧 and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    'almost json {"a": 1',
    "[1, 2]",  # parses as JSON, so ml-commons does not escape it; harmless without quotes
    "</script><script>alert('x')</script> & <b> = \\u0041 and \\/ literal",
]
HOSTILE_DOCS = HOSTILE_QUERIES + [
    "",
    "   ",
    "plain document about washington dc, the capital of the united states",
    "x" * 800 + ' "quoted tail" \\',
    '{"a": "b", "c": [1, 2]}',  # JSON text: safe inside a documents array (patterns 1, 2)
]


def assert_scores_match(model, query: str, docs: list[str], scores: list[float]) -> None:
    expected = model.score(query, docs)
    assert len(scores) == len(docs)
    assert all(isinstance(s, float) for s in scores)
    np.testing.assert_allclose(scores, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
def test_hostile_strings_score_like_the_raw_strings(handler, pattern):
    docs = HOSTILE_DOCS if pattern != "ml-inference" else HOSTILE_DOCS[:-1]
    for query in HOSTILE_QUERIES:
        pairs = [p for body in bodies(pattern, query, docs) for p in parsed_pairs(body)]
        assert pairs == [(query, d) for d in docs]
    # Scoring is per pair: the full trip for every query with the cheap patterns,
    # and for three of them with pattern 3 (one handler call per document).
    for query in HOSTILE_QUERIES if pattern != "ml-inference" else HOSTILE_QUERIES[:3]:
        scores = rerank_through(pattern, handler, query, docs)
        assert_scores_match(handler, query, docs, scores)


@pytest.mark.parametrize("pattern", ["cohere", "tei"])
def test_a_thousand_documents_in_one_call(handler, pattern):
    docs = [f'doc {i}: "{HOSTILE_DOCS[i % len(HOSTILE_DOCS)][:60]}"' for i in range(1000)]
    query = HOSTILE_QUERIES[0]
    body = mlc_payload(connector_file(pattern), query=query, docs=docs)
    assert len(json.loads(body)["documents" if pattern == "cohere" else "texts"]) == 1000
    scores = rerank_through(pattern, handler, query, docs)
    assert_scores_match(handler, query, docs, scores)


def test_a_thousand_hits_one_call_each(handler):
    docs = [f"hit {i} \"{HOSTILE_QUERIES[i % len(HOSTILE_QUERIES)]}\"" for i in range(1000)]
    query = HOSTILE_QUERIES[2]
    pairs = [p for body in bodies("ml-inference", query, docs) for p in parsed_pairs(body)]
    assert pairs == [(query, d) for d in docs]
    sample = docs[::40]  # every call is alike; score 25 of them end to end
    assert_scores_match(handler, query, sample, rerank_through("ml-inference", handler, query,
                                                               sample))


@pytest.mark.parametrize("pattern", ["cohere", "tei"])
def test_over_the_document_limit_is_a_clear_413(handler, pattern):
    body = mlc_payload(connector_file(pattern), query="q", docs=["d"] * 1001)
    status, answer = invoke(handler, body)
    assert status == 413
    assert "RERANK_MAX_DOCUMENTS" in json.loads(answer)["error"]["message"]



# ------------------------------------------------------------------------- an instruction
INSTRUCTIONS = [
    'Judge "relevance" for a lawyer\'s question: C:\\cases\\ {query} {document} $x',
    "line one\nline two\ttab, Grüße 東京 🚀, </script> \\u0041 \u2028",
]


@pytest.fixture(scope="module")
def llm_handler(llm_dirs):
    import inference

    model = inference.model_fn(str(llm_dirs("qwen3")))
    yield model
    model.close()


@pytest.mark.parametrize("pattern", sorted(PATTERNS))
@pytest.mark.parametrize("instruction", INSTRUCTIONS)
def test_an_instruction_reaches_the_llm_reranker_intact(llm_handler, pattern, instruction):
    """--instruction: written into each connector, it arrives as the very same string, and
    the scores are those of the instruction (not of the endpoint's default)."""
    from reranker.request import RerankRequest

    files = bundle.files(build("my-reranker", "us-east-1",
                               role_arn="arn:aws:iam::123456789012:role/os-sagemaker",
                               instruction=instruction))
    query, docs = HOSTILE_QUERIES[0], HOSTILE_DOCS[:4]
    for body in bodies(pattern, query, docs, files):
        assert inference_request(body).instruction == instruction
    scores = rerank_through(pattern, llm_handler, query, docs, files)
    pairs = [(query, d) for d in docs]
    expected = llm_handler.rerank(RerankRequest("python", pairs, docs, instruction=instruction))
    default = llm_handler.score(query, docs)
    np.testing.assert_allclose(scores, expected.relevance, atol=1e-5, rtol=0)
    assert not np.allclose(scores, default, atol=1e-5, rtol=0)


def test_without_an_instruction_no_body_carries_one():
    for key in PATTERNS:
        connector = connector_file(key)
        assert "instruction" not in json.dumps(connector)
    assert connector_file("tei")["actions"][0]["pre_process_function"] == \
        painless.TEI_PRE_PROCESS


def inference_request(body: str):
    import inference

    return inference.input_fn(body.encode("utf-8"), "application/json")

JSON_QUERIES = ['{"question": "capital of america?"}', '["a", "b"]', '{"a": "x\\ny"}']


def _send_query(pattern: str, query: str) -> str:
    connector = connector_file(pattern)
    if pattern == "ml-inference":
        return mlc_send(connector, remote=mlc_ml_inference_parameters(query, "a document"))
    return mlc_send(connector, query=query, docs=["a document", "another"])


@pytest.mark.parametrize("pattern", ["cohere", "ml-inference"])
@pytest.mark.parametrize("query", JSON_QUERIES)
def test_a_query_that_is_json_fails_in_ml_commons(handler, pattern, query):
    """ml-commons skips escaping values that parse as JSON: the body breaks (documented).
    The search fails with "Invalid payload" before the endpoint is called; a body that did
    reach the container would get a clear 400, never a 500."""
    with pytest.raises(InvalidPayload):
        _send_query(pattern, query)
    connector = connector_file(pattern)
    body = (mlc_payload(connector, remote=mlc_ml_inference_parameters(query, "a document"))
            if pattern == "ml-inference" else
            mlc_payload(connector, query=query, docs=["a document", "another"]))
    status, answer = invoke(handler, body)
    assert status == 400
    error = json.loads(answer)["error"]
    assert error["type"] == "invalid_json" and "not valid JSON" in error["message"]


@pytest.mark.parametrize("query", JSON_QUERIES + ["[1,2]", "{}"])
def test_the_painless_body_pattern_survives_a_json_query(handler, query):
    docs = ["a document", '{"a": 1}', "another"]
    scores = rerank_through("tei", handler, query, docs)
    assert_scores_match(handler, query, docs, scores)


MUST_ESCAPE = ('"', "\\") + tuple(map(chr, range(32)))


@pytest.mark.parametrize("pattern", ["cohere", "ml-inference"])
@pytest.mark.parametrize("query", JSON_QUERIES + [
    "[1,2]", "{}", "[]", '"quoted"', "42", "[1, 2]\n", '{"a":1}', "[true, null]", '["x"]',
    "[1,\t2]", "plain", '{"a": 1'])
def test_exactly_json_with_characters_to_escape_breaks(pattern, query):
    """What the README states: a value breaks the built-in and ml_inference patterns iff it
    parses as a JSON object or array and holds a quote, a backslash or a control character."""
    breaks = mlc_is_json(query) and any(c in query for c in MUST_ESCAPE)
    try:
        _send_query(pattern, query)
    except InvalidPayload:
        assert breaks, query
    else:
        assert not breaks, query


def test_parameter_references_in_text_are_expanded(handler):
    """README: text holding ${parameters.NAME} is expanded by ml-commons (the connector's
    parameters are in scope), in every pattern; ${parameters.body} itself loops."""
    query = "where is ${parameters.region}?"
    body = mlc_send(connector_file("tei"), query=query, docs=["d"])
    assert json.loads(body)["query"] == "where is us-east-1?"
    with pytest.raises(SubstitutionLoop):
        mlc_send(connector_file("tei"), query="${parameters.body}", docs=["d"])


def test_a_document_that_is_json_breaks_only_pattern_3(handler):
    doc = HOSTILE_DOCS[-1]
    body = mlc_payload(connector_file("ml-inference"), remote=mlc_ml_inference_parameters("q", doc))
    status, _ = invoke(handler, body)
    assert status == 400
    for pattern in ("cohere", "tei"):
        scores = rerank_through(pattern, handler, "q", [doc, "other"])
        assert_scores_match(handler, "q", [doc, "other"], scores)


def test_pattern_3_puts_the_query_first(handler):
    """The rerank-by-field tutorial mapped text = document; the tiny model is not
    symmetric, so order shows."""
    query, doc = "capital of america", "washington dc is the capital of the united states"
    remote = mlc_ml_inference_parameters(query, doc)
    body = mlc_payload(connector_file("ml-inference"), remote=remote)
    assert json.loads(body)["inputs"] == {"text": query, "text_pair": doc}
    ours = rerank_through("ml-inference", handler, query, [doc])[0]
    straight, swapped = handler.score(query, [doc])[0], handler.score(doc, [query])[0]
    assert abs(ours - straight) < 1e-6 < abs(ours - swapped)


def test_the_tutorials_escape_would_escape_twice():
    """The SageMaker reranker tutorial called escape() on inputs that 2.12+ already escaped:
    the text changes."""
    query = 'say "hi" \\ bye'
    once = mlc_gson_escape(query)
    twice = once.replace("\\", "\\\\").replace('"', '\\"')  # the DEFAULT_ESCAPE_FUNCTION
    assert json.loads('"' + once + '"') == query
    assert json.loads('"' + twice + '"') != query
    assert "escape(" not in painless.TEI_PRE_PROCESS


# --------------------------------------------------------------------- the model itself
def test_escaping_model_matches_ml_commons_behaviour():
    assert mlc_gson_escape('a "b" \\ \n \x01 \u2028 é') == 'a \\"b\\" \\\\ \\n \\u0001 \\u2028 é'
    assert mlc_escape_json('a/"b" é 🚀 \x01') == 'a\\/\\"b\\" \\u00E9 \\uD83D\\uDE80 \\u0001'
    assert mlc_is_json('{"a": 1}') and mlc_is_json("[1]")
    assert not any(map(mlc_is_json, ["1", '"x"', "true", "", "{", "text"]))
    assert mlc_escape_parameters({"q": '{"a":1}', "n": "3", "t": 'x"'}) == \
        {"q": '{"a":1}', "n": "3", "t": 'x\\"'}
    for text in HOSTILE_DOCS:
        assert json.loads('"' + mlc_gson_escape(text) + '"') == text
        assert json.loads('"' + mlc_escape_json(text) + '"') == text


def test_substitution_model_recurses_like_string_substitutor():
    params = {"a": "1", "b": "${parameters.a}", "loop": "${parameters.loop}"}
    assert mlc_substitute("${parameters.b}-${parameters.x}", params) == "1-${parameters.x}"
    assert mlc_substitute("$${parameters.a}", params) == "${parameters.a}"
    assert mlc_substitute("${parameters.x:-null}", params) == "null"
    with pytest.raises(SubstitutionLoop):
        mlc_substitute("${parameters.loop}", params)


def test_java_double_to_string():
    assert [java_double_to_string(x) for x in (0.5, 1.0, 0.001, 1.5e-5, 0.0001234, 2e7)] == \
        ["0.5", "1.0", "0.001", "1.5E-5", "1.234E-4", "2.0E7"]


# ------------------------------------------------------------------- Painless, statically
def _code_outside_strings(script: str) -> str:
    """Painless source with string literal contents blanked ('...' and "...")."""
    out, quote, i = [], None, 0
    while i < len(script):
        ch = script[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
                out.append(ch)
        else:
            if ch in "'\"":
                quote = ch
            out.append(ch)
        i += 1
    assert quote is None, "unterminated string literal"
    return "".join(out)


@pytest.mark.parametrize("name,script,params", [
    ("pre", painless.TEI_PRE_PROCESS, {"params.query_text", "params.text_docs"}),
    ("pre with an instruction", painless.tei_pre_process('it\'s "x" \\ {query}\n$ é'),
     {"params.query_text", "params.text_docs"}),
    ("post", painless.TEI_POST_PROCESS, {"params.result"}),
])
def test_painless_is_sound_statically(name, script, params):
    import re

    code = _code_outside_strings(script)
    for open_, close in ("{}", "()", "[]"):
        depth = 0
        for ch in code:
            depth += (ch == open_) - (ch == close)
            assert depth >= 0, f"{close} before {open_}"
        assert depth == 0, f"unbalanced {open_}{close}"
    assert "escape(" not in script  # inputs arrive escaped since 2.12; twice would be wrong
    assert "${parameters." not in script  # would be substituted into the script
    assert set(re.findall(r"params\.\w+", code)) == params
    # Only methods in Painless' allow-list for these types.
    allowed = {"size", "get", "append", "toString", "intValue", "doubleValue"}
    assert set(re.findall(r"\.(\w+)\(", code)) <= allowed
    statements = [ln.strip() for ln in script.strip().splitlines()]
    assert all(s.endswith((";", "{", "}")) for s in statements)
    assert statements[-1].startswith("return ")


def test_painless_outputs_match_golden():
    query = 'q "1" \\ \n é 🚀'
    docs = ['d "0"', "d\t1\x00", "{}", ""]
    pre_in = {"query_text": mlc_gson_escape(query), "text_docs": [mlc_gson_escape(d)
                                                                  for d in docs]}
    pre_out = painless_tei_pre_process(pre_in)
    assert json.loads(pre_out)["parameters"] == {"body": {"query": query, "texts": docs}}
    post_in = {"result": [{"index": 2, "score": 0.9}, {"index": 0, "score": 1.5e-5},
                          {"index": 3, "score": 1.0}, {"index": 1, "score": 0.0001234}]}
    post_out = painless_tei_post_process(post_in)
    assert similarity_scores(json.loads(post_out)) == pytest.approx(
        [1.5e-5, 0.0001234, 0.9, 1.0], rel=1e-6)
    golden = {"pre_process": {"params": pre_in, "returns": pre_out},
              "post_process": {"params": post_in, "returns": post_out}}
    path = GOLDEN / "painless_outputs.json"
    text = json.dumps(golden, indent=2, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, "run with UPDATE_GOLDEN=1 after a change"


def test_json_smart_reads_long_literals_as_big_decimals():
    """The model above, on the literal json-smart's own test uses, and on what Python's repr
    of a sigmoid score often is."""
    assert type(mlc_json('{"v":0.12345678912345678}')["v"]) is JavaBigDecimal
    assert type(mlc_json('{"v":0.035571189272636}')["v"]) is JavaDouble


def test_every_score_reads_as_a_double_in_ml_commons():
    """The Cohere post-process casts relevance_score to Double: each score, whatever its
    magnitude, is written short enough for json-smart to read one."""
    from reranker.wire import as_float, encode_json

    rng = np.random.default_rng(0)
    logits = np.concatenate([rng.normal(0, 12, 2000), [-1e-177, 1e-300, 4e14, -37.5]])
    scores = np.concatenate([logits, 1 / (1 + np.exp(-logits[:2000]))])
    text = encode_json({"results": [{"index": i, "relevance_score": as_float(s)}
                                    for i, s in enumerate(scores)]}).decode()
    tensors = mlc_cohere_post_process(text)
    assert len(tensors) == len(scores)
    read = np.array([t["data"][0] for t in tensors])
    assert np.allclose(read, scores, rtol=1e-11, atol=0)
