"""The aws-samples bge-reranker-large notebook's SageMaker handler, copied exactly as
written, to benchmark it as users run it.

Source: aws-samples/amazon-bedrock-samples, rag/knowledge-bases/features-examples/
03-advanced-concepts/reranking/01_deploy-reranking-model-sm.ipynb ("Reranking Model with
Hugging Face Transformers and Amazon SageMaker"), the ``code/inference.py`` cell; MIT-0
licensed sample code.  Only this docstring and the formatting the linter asks for
(indentation, blank lines) differ: the computation (one padded batch of every pair,
truncation at 512 tokens, the ``print``) is theirs, unchanged.
"""

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer


def model_fn(model_dir):
    # Load model from HuggingFace Hub
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    model.eval()
    return model, tokenizer


def predict_fn(data, model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    query = data['query']
    documents = data['documents']
    topk = data['topk']
    pair_list = [[query, x] for x in documents]
    with torch.no_grad():
        inputs = tokenizer(pair_list, padding=True, truncation=True, return_tensors='pt',
                           max_length=512)
        scores = model(**inputs, return_dict=True).logits.view(-1, ).float()
        print(scores)
        sorted_indexes = sorted(range(len(scores)), key=lambda k: scores[k], reverse=True)[:topk]
        response = [{"index": x, "score": scores[x]} for x in sorted_indexes]
        return response
