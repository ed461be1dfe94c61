"""Useful FLOPs of an encoder cross-encoder, from its config.

Per layer, per token of a sequence of ``t`` real tokens (h = hidden size, i = FFN size):

* dense:     2 x (4 h^2 + 2 h i)  the Q, K, V, O projections and the two FFN matrices
             (2 FLOPs per multiply-add, i.e. 2 x the layer's weights seen by each token)
* attention: 4 t h                Q K^T and softmax(.) V, each t x h multiply-adds

so one sequence costs ``L t (8 h^2 + 4 h i + 4 t h) + 2 h^2 + 2 h labels`` (pooler and
classifier once per sequence; embeddings are look-ups, LayerNorm/softmax are ignored).

Heads that read the first token only (the model types of the engine's
``FIRST_TOKEN_HEADS``, reranker.backends.torch_backend) need the last layer's FFN on that
token alone: the engine runs it so (``_classify_from_first_token_only``, and its ONNX and
OpenVINO exports are traced from that model), so the other ``t - 1`` tokens' FFN,
``(t - 1) 4 h i``, is work the answer does not need and is not counted.

"Useful" counts real tokens only: the FLOPs spent on padding are what padding
efficiency measures separately.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

FORMULA = ("L*t*(8*h^2 + 4*h*i + 4*t*h) - [first-token head] (t-1)*4*h*i + 2*h^2"
           " + 2*h*labels per sequence of t tokens")


def first_token_head(model_type: str) -> bool:
    """Whether the engine runs the last layer's FFN on the first token only for this
    model type (the engine's own list, so the count follows the engine)."""
    from reranker.backends.torch_backend import FIRST_TOKEN_HEADS

    return model_type in FIRST_TOKEN_HEADS


@dataclasses.dataclass(frozen=True)
class Shape:
    layers: int
    hidden: int
    intermediate: int
    labels: int = 1
    model_type: str = ""
    # The last layer's FFN runs on the first token alone (see the module docstring).
    first_token_only: bool = False

    @classmethod
    def from_model_dir(cls, model_dir: str | Path) -> Shape:
        from reranker import model_dir as model_facts

        facts = model_facts.read(model_dir)
        config = facts.config
        return cls(layers=int(config["num_hidden_layers"]), hidden=int(config["hidden_size"]),
                   intermediate=int(config["intermediate_size"]), labels=facts.num_labels,
                   model_type=facts.model_type,
                   first_token_only=first_token_head(facts.model_type))

    def sequence_flops(self, tokens: int) -> float:
        h, i, t = self.hidden, self.intermediate, tokens
        per_token = 8 * h * h + 4 * h * i + 4 * t * h
        total = self.layers * t * per_token + 2 * h * h + 2 * h * self.labels
        return total - self.skipped_ffn_flops(tokens)

    def skipped_ffn_flops(self, tokens: int) -> float:
        """The last layer's FFN on every token but the first: not needed by the answer."""
        if not self.first_token_only or tokens < 1:
            return 0
        return (tokens - 1) * 4 * self.hidden * self.intermediate

    def flops(self, lengths) -> float:
        return float(sum(self.sequence_flops(t) for t in lengths))

    def dense_flops_per_token(self) -> float:
        return float(self.layers * (8 * self.hidden**2 + 4 * self.hidden * self.intermediate))
