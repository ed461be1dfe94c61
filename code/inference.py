"""SageMaker inference hooks for a cross-encoder reranker.

The official Hugging Face DLC (sagemaker-huggingface-inference-toolkit) imports this
module from ``<model_dir>/code`` and calls the four hooks; our own container calls the
same ones.  Each is a one-line door onto the engine in the ``reranker`` package.
Settings come from ``RERANK_*`` environment variables (see reranker/settings.py).  On the
DLC a request's error is answered with its own status and body (reranker/refusals.py).
"""

import functools

from reranker import dialects, replicas
from reranker.context import cancellation, gpu_id, requested_dialect, worker_threads
from reranker.refusals import answered, carried, loaded


def model_fn(model_dir, context=None):
    return loaded(lambda: replicas.load(model_dir, gpu_id=gpu_id(context),
                                        threads=worker_threads(context)), context)


@carried
def input_fn(input_data, content_type, context=None):
    return dialects.parse(input_data, content_type, dialect=requested_dialect(context))


@carried
def predict_fn(data, model, context=None):
    rerank = functools.partial(model.rerank, cancel=cancellation(context))
    return dialects.run(data, rerank, model.check_body_documents)


@answered
def output_fn(prediction, accept, context=None):
    return dialects.render(prediction, accept)


# The Accept headers output_fn can answer, known before any work: our server checks them
# before input_fn (a 406 after scoring would waste the model's time).  The DLC has no such
# step; output_fn's own check still answers 406 there.
output_fn.check_accept = dialects.check_accept
