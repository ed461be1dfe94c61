"""Painless for pattern 2 (a TEI-format connector), correct on OpenSearch 2.12 and later.

How ml-commons runs them (ConnectorUtils, DefaultPreProcessFunction, ScriptUtils):
- pre-process: ``params.query_text`` and ``params.text_docs`` arrive already JSON-escaped
  (StringUtils.processTextDoc), so they are concatenated into JSON string literals as they
  are; calling ``escape()`` again would escape twice.  The returned JSON is parsed, and the
  values are escaped once more when substituted into ``request_body``.
- post-process: ``params.result`` is the response array (TEI answers ``[{index, score}]``
  sorted by score).  Scores go back by index, one FLOAT32 tensor per document, because the
  rerank processor assigns them to hits in input order.  Numbers may arrive as Integer or
  Double depending on the OpenSearch version, hence the casts to Number.
"""

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
return '{"parameters":{"query":"' + query + '","texts":' + texts.toString() + '}}';
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
