"""What a real Vespa computes from our application package, emulated from Vespa's source.

No Vespa runs here.  These functions follow vespa-engine/vespa exactly:

- config-model/src/main/java/com/yahoo/vespa/model/container/component/
  HuggingFaceTokenizer.java, getConfig (line 39): every ``hugging-face-tokenizer``
  component runs with truncation OFF, padding OFF and addSpecialTokens(false), whatever
  tokenizer.json says: :func:`embed` encodes without special tokens, truncation or padding.
- linguistics-components/src/main/java/com/yahoo/language/tools/Embed.java, asTensor
  (lines 27-36): the ids are cut to the tensor's size; unset cells stay 0.
- config-model/src/main/java/com/yahoo/schema/expressiontransforms/TokenTransformer.java:
  tokenInputIds = CLS 101, SEP 102, arguments from index 1 (lines 106-108);
  customTokenInputIds takes its CLS and SEP from arguments 0 and 1, the length from 2 and
  the token arguments from 3 (lines 119-123); the sequence is CLS a SEP b SEP ...
  (createTokenSequence, lines 257-265) evaluated as a chain of ``if (d1 < length so far,
  ...)`` (createTokenSequenceExpr, lines 297-314; createLengthExpr, lines 321-339) with
  0 after the last element; an argument's length is ``sum(map(input, f(x)(x > 0)))``
  (lines 240-250) and token i of an argument is the slice at ``d1 - length before it``
  (createTokenExtractExpr, lines 344-355); tokenTypeIds is 0 below ``1 + len(a) + 1``, 1
  below the whole sequence, else 0 (lines 160-181); tokenAttentionMask is 1 below the whole
  sequence (lines 197-210); every token argument must be a reference (lines 220-228).
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

from tokenizers import Tokenizer

CLS, SEP = 101, 102
_TOKEN_FUNCTIONS = {"tokenInputIds": 1, "customTokenInputIds": 3, "tokenTypeIds": 1,
                    "tokenAttentionMask": 1}


@functools.cache
def _component(path: str) -> Tokenizer:
    tokenizer = Tokenizer.from_file(path)
    tokenizer.no_truncation()  # Truncation.Enum.OFF
    tokenizer.no_padding()     # Padding.Enum.OFF
    return tokenizer


def embed(tokenizer_file: Path, text: str, size: int) -> list[float]:
    """``embed(component, text)`` into ``tensor<float>(d0[size])``."""
    ids = _component(str(tokenizer_file)).encode(text, add_special_tokens=False).ids[:size]
    return [float(i) for i in ids] + [0.0] * (size - len(ids))


class Schema:
    """The parts of schemas/doc.sd the rerank profile's inputs depend on."""

    def __init__(self, app: Path):
        self.app = app
        self.text = (app / "schemas" / "doc.sd").read_text()
        self.functions = dict(re.findall(
            r"function (\w+)\(\) \{\s*expression \{\s*(.+?)\s*\}", self.text))
        # ONNX input name -> the rank-profile function that feeds it
        self.onnx_inputs = dict(re.findall(r"input (\w+): (\w+)", self.text))
        self.query_size = int(re.search(r"query\(q_tokens\) tensor<float>\(d0\[(\d+)\]\)",
                                        self.text)[1])
        self.doc_size = int(re.search(r"field text_tokens type tensor<float>\(d0\[(\d+)\]\)",
                                      self.text)[1])
        self.onnx_file = app / re.search(r"onnx-model crossencoder \{\s*file: (\S+)",
                                         self.text)[1]
        self.tokenizer_file = app / "models" / "tokenizer.json"

    def model_inputs(self, query: str, document: str) -> dict[str, list[int]]:
        """What the global phase feeds the ONNX model for one (query, hit)."""
        refs = {"query(q_tokens)": embed(self.tokenizer_file, query, self.query_size),
                "attribute(text_tokens)": embed(self.tokenizer_file, document, self.doc_size)}
        return {name: [int(v) for v in self.evaluate(self.functions[fn], refs)]
                for name, fn in self.onnx_inputs.items()}

    def evaluate(self, expression: str, refs: dict[str, list[float]]) -> list[float]:
        name, args = _call(expression)
        if name == "tensor<float>":  # tensor<float>(d0[1],d1[L])(0) or (d0[n])(0)
            dims = [int(n) for n in re.findall(r"d\d\[(\d+)\]", args[0] if args else "")]
            return [0.0] * dims[-1]
        first = _TOKEN_FUNCTIONS[name]
        numbers = [int(a) for a in args[:first]]
        tokens = [self._reference(a, refs) for a in args[first:]]
        length = numbers[-1]
        start, sep = (numbers[0], numbers[1]) if name == "customTokenInputIds" else (CLS, SEP)
        sequence: list[float | list[float]] = [start]
        for arg in tokens:
            sequence += [arg, sep]
        return [_position(name, d1, sequence) for d1 in range(length)]

    def _reference(self, arg: str, refs: dict[str, list[float]]) -> list[float]:
        if arg in refs:
            return refs[arg]
        if re.fullmatch(r"\w+", arg) and arg in self.functions:
            return self.evaluate(self.functions[arg], refs)
        raise AssertionError(f"token argument {arg!r} is not a reference Vespa resolves")


def _position(function: str, d1: int, sequence: list) -> float:
    lengths = [_length(part) for part in sequence]
    total = sum(lengths)
    if function == "tokenAttentionMask":
        return 1.0 if d1 < total else 0.0
    if function == "tokenTypeIds":
        return 0.0 if d1 < sum(lengths[:3]) else (1.0 if d1 < total else 0.0)
    before = 0
    for part, size in zip(sequence, lengths):
        if d1 < before + size:
            return part[d1 - before] if isinstance(part, list) else float(part)
        before += size
    return 0.0


def _length(part) -> int:
    return sum(1 for x in part if x > 0) if isinstance(part, list) else 1


def _call(expression: str) -> tuple[str, list[str]]:
    match = re.fullmatch(r"(tensor<float>)\((.*?)\)\((.*)\)|(\w+)\((.*)\)", expression.strip())
    assert match, f"not a token function: {expression}"
    if match[1]:
        return match[1], [match[2]]
    return match[4], _split(match[5])


def _split(args: str) -> list[str]:
    out, depth, current = [], 0, ""
    for ch in args:
        if ch == "," and depth == 0:
            out.append(current.strip())
            current = ""
            continue
        depth += {"(": 1, ")": -1}.get(ch, 0)
        current += ch
    return out + [current.strip()]
