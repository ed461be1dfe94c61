"""Painless for pattern 2 (a TEI-format connector), correct on OpenSearch 2.12 and later.

How ml-commons runs them (ml-algorithms/.../remote/ConnectorUtils.java processMLInput,
common/.../preprocess/DefaultPreProcessFunction.java process, common/.../utils/StringUtils.java
convertScriptStringToJsonString, ml-algorithms/.../utils/ScriptUtils.java):
- pre-process: ``params.query_text`` and ``params.text_docs`` arrive already JSON-escaped
  (ConnectorUtils.escapeMLInput -> StringUtils.processTextDoc), so they are concatenated
  into JSON string literals as they are; calling ``escape()`` again would escape twice.
- The script returns the whole request body as one object, ``{"parameters": {"body":
  {...}}}``, and ``request_body`` is just ``${parameters.body}``.  ml-commons parses the
  returned text with Gson, turns a non-string parameter back into JSON text (gson.toJson),
  and leaves values that parse as JSON unescaped (escapeRemoteInferenceInputData): so the
  body arrives as the script built it, valid JSON whatever the query and documents hold,
  even a query that is itself JSON (which breaks ``"${parameters.query}"`` templates).
- An instruction for an LLM reranker (``--instruction``) is one more key of that body, a
  constant: JSON-escaped (ASCII only), then written as a Painless string literal.
- post-process: ``params.result`` is the response array (TEI answers ``[{index, score}]``
  sorted by score).  Scores go back by index, one FLOAT32 tensor per document, because the
  rerank processor assigns them to hits in input order.  Numbers may arrive as Integer or
  Double depending on the OpenSearch version, hence the casts to Number.
"""

import json

_BODY_END = " + '}}}';"

TEI_PRE_PROCESS = """\
def query = params.query_text;
def docs = params.text_docs;
StringBuilder texts = new StringBuilder('[');
for (int i = 0; i < docs.size(); i++) {
  if (i > 0) {
    texts.append(',');
  }
  texts.append('"').append(docs.get(i)).append('"');
}
texts.append(']');
return '{"parameters":{"body":{"query":"' + query + '","texts":' + texts.toString() + '}}}';
"""

TEI_POST_PROCESS = """\
def results = params.result;
if (results == null || results.size() == 0) {
  throw new IllegalArgumentException('the reranker returned no scores');
}
double[] scores = new double[results.size()];
for (def item : results) {
  scores[((Number) item.index).intValue()] = ((Number) item.score).doubleValue();
}
StringBuilder out = new StringBuilder('[');
for (int i = 0; i < scores.length; i++) {
  if (i > 0) {
    out.append(',');
  }
  out.append('{"name":"similarity","data_type":"FLOAT32","shape":[1],"data":[');
  out.append(scores[i]);
  out.append(']}');
}
out.append(']');
return out.toString();
"""


def tei_pre_process(instruction: str | None = None) -> str:
    """The pre-process script; with an instruction, the body it builds carries that too."""
    if instruction is None:
        return TEI_PRE_PROCESS
    member = ',"instruction":' + json.dumps(instruction, ensure_ascii=True)
    return TEI_PRE_PROCESS.replace(_BODY_END, f" + {string_literal(member)}{_BODY_END}")


def string_literal(text: str) -> str:
    """A Painless single-quoted string literal holding ``text`` (ASCII, no line breaks)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
