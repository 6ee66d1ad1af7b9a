"""User-supplied CLIP-style image+text embedding models, run with onnxruntime on the CPU.

No CLIP model ships in any package imagedex can install offline, so imagedex loads one from a
directory the user provides (for example exported once from open_clip or Hugging Face). Image and
text embeddings land in one space: ``embed_images`` and ``embed_texts`` return unit-length rows,
so a dot product is a cosine similarity and "a dog on the beach" can find photos directly.

Model directory format
----------------------
``DIR/image.onnx``
    The image tower. Exactly one input: float32 ``[N, 3, S, S]`` pixels (RGB, scaled to 0..1,
    then ``(x - mean) / std`` per channel); the first output is float32 ``[N, D]``. ``N`` should
    be dynamic; any static dimension must agree with ``clip.json``.
``DIR/text.onnx``
    The text tower. One input, int64 (or int32) token ids ``[N, T]``, or two inputs where the
    second (or the one whose name contains ``mask``) is the attention mask, same type and shape,
    1 for tokens and 0 for padding. Sequences are padded to exactly ``T = context_length`` with
    ``pad_id``. The first output is float32 ``[N, D]``.
``DIR/tokenizer.json``
    A Hugging Face ``tokenizers`` file whose post-processor adds the model's start/end tokens.
    imagedex truncates to ``context_length`` tokens and pads itself (the file's own padding and
    truncation settings are ignored).
``DIR/clip.json``
    ``{"name": "vit-b-32", "embedding_dim": 512, "image_size": 224,
    "mean": [0.4815, 0.4578, 0.4082], "std": [0.2686, 0.2613, 0.2758], "context_length": 77}``,
    plus optionally ``"pad_id"`` (default 0) and ``"version"`` (default: a hash of the two
    ``.onnx`` files; set it to skip hashing large files at start-up). ``name`` is 1-64 characters
    from ``A-Z a-z 0-9 . _ -``; the analyzer is called ``clip-<name>``.

Images are converted to RGB, the largest centred square is scaled to ``S x S`` (bicubic, one
resize) and normalised. Problems with the directory raise :class:`~imagedex.errors.ConfigError`;
failures while embedding raise :class:`~imagedex.errors.RecognitionError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imagedex.errors import ConfigError, RecognitionError
from imagedex.recognition.base import Analysis, Analyzer
from imagedex.recognition.runtime import Lazy, centre_square, cpu_threads, onnx_session

__all__ = ["CLIP_FILES", "ClipConfig", "ClipImageEmbedder", "ClipModel"]

IMAGE_MODEL = "image.onnx"
TEXT_MODEL = "text.onnx"
TOKENIZER = "tokenizer.json"
CONFIG = "clip.json"
CLIP_FILES = (IMAGE_MODEL, TEXT_MODEL, TOKENIZER, CONFIG)

_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_CHUNK = 32  # inputs per onnxruntime run: bounds memory for very large batches
_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


@dataclass(frozen=True)
class ClipConfig:
    """The contents of ``clip.json``."""

    name: str
    embedding_dim: int
    image_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    context_length: int
    pad_id: int = 0
    version: str | None = None

    @classmethod
    def from_file(cls, path: Path) -> ClipConfig:
        try:
            raw = json.loads(path.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not a readable JSON file: {exc}") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: expected a JSON object")
        return cls.from_dict(raw, str(path))

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = CONFIG) -> ClipConfig:
        def positive_int(key: str, default: int | None = None, minimum: int = 1) -> int:
            value = raw.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"{where}: {key!r} must be an integer >= {minimum}")
            return value

        def triple(key: str, positive: bool) -> tuple[float, float, float]:
            value = raw.get(key)
            if (
                not isinstance(value, list)
                or len(value) != 3
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
                or (positive and not all(v > 0 for v in value))
            ):
                kind = "positive numbers" if positive else "numbers"
                raise ConfigError(f"{where}: {key!r} must be a list of 3 {kind} (R, G, B)")
            return (float(value[0]), float(value[1]), float(value[2]))

        name = raw.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError(f"{where}: 'name' must be 1-64 characters from A-Z a-z 0-9 . _ -")
        version = raw.get("version")
        if version is not None and (not isinstance(version, str) or not version.strip()):
            raise ConfigError(f"{where}: 'version' must be a non-empty string")
        return cls(
            name=name,
            embedding_dim=positive_int("embedding_dim"),
            image_size=positive_int("image_size"),
            mean=triple("mean", positive=False),
            std=triple("std", positive=True),
            context_length=positive_int("context_length", minimum=2),
            pad_id=positive_int("pad_id", 0, minimum=0),
            version=version,
        )


def _static(dim: Any) -> int | None:
    """A static dimension from onnxruntime's shape list, or None for a symbolic one."""
    return dim if isinstance(dim, int) and dim > 0 else None


def _normalize(vectors: np.ndarray, what: str) -> np.ndarray:
    if not np.all(np.isfinite(vectors)):
        raise RecognitionError(f"the CLIP {what} model returned NaN or infinite values")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


class ClipModel:
    """A CLIP-style model directory (see the module documentation for its format).

    The directory and ``clip.json`` are checked when the object is created; each tower's ONNX
    session (and the tokenizer) loads on first use, or on :meth:`load`. ``threads`` sets
    onnxruntime's intra-op threads (default: every CPU this process may use). Thread-safe.
    """

    def __init__(self, directory: str | os.PathLike[str], *, threads: int | None = None) -> None:
        self.threads = cpu_threads(threads)
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise ConfigError(f"CLIP model directory {self.directory} does not exist")
        missing = [f for f in CLIP_FILES if not (self.directory / f).is_file()]
        if missing:
            raise ConfigError(
                f"CLIP model directory {self.directory} lacks {', '.join(missing)} "
                f"(needs {', '.join(CLIP_FILES)})"
            )
        self.config = ClipConfig.from_file(self.directory / CONFIG)
        self._image: Lazy[Any] = Lazy(self._load_image_tower)
        self._text: Lazy[tuple[Any, Any]] = Lazy(self._load_text_tower)
        self._text_inputs: tuple[str, str | None] = ("", None)
        self._id_dtype: Any = np.int64
        self._mean = np.asarray(self.config.mean, dtype=np.float32)
        self._std = np.asarray(self.config.std, dtype=np.float32)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def dimension(self) -> int:
        return self.config.embedding_dim

    @cached_property
    def version(self) -> str:
        """``clip.json``'s ``version``, else the first 12 hex digits of the towers' SHA-256."""
        if self.config.version:
            return self.config.version
        digest = hashlib.sha256()
        for file in (IMAGE_MODEL, TEXT_MODEL):
            with (self.directory / file).open("rb") as f:
                while block := f.read(1 << 20):
                    digest.update(block)
        return digest.hexdigest()[:12]

    # ------------------------------------------------------------------ loading

    def load(self) -> None:
        """Load and check both towers and the tokenizer now (raises ConfigError)."""
        self._image_session()
        self._text_session()

    def _session(self, file: str) -> Any:
        path = self.directory / file
        return onnx_session(path, self.threads, f"{path} as an ONNX model", error=ConfigError)

    def _check_output(self, session: Any, file: str) -> None:
        outputs = session.get_outputs()
        if not outputs:
            raise ConfigError(f"{file} has no outputs")
        shape = outputs[0].shape
        if outputs[0].type != "tensor(float)" or len(shape) != 2:
            raise ConfigError(f"{file}: the first output must be float32 [N, D], not {shape}")
        dim = _static(shape[1])
        if dim is not None and dim != self.config.embedding_dim:
            raise ConfigError(
                f"{file} outputs {dim}-dimensional embeddings but {CONFIG} says "
                f"embedding_dim={self.config.embedding_dim}"
            )

    def _image_session(self) -> Any:
        return self._image.get()

    def _load_image_tower(self) -> Any:
        session = self._session(IMAGE_MODEL)
        inputs = session.get_inputs()
        if len(inputs) != 1:
            raise ConfigError(f"{IMAGE_MODEL} must have exactly one input (pixels)")
        shape = inputs[0].shape
        size = self.config.image_size
        if inputs[0].type != "tensor(float)" or len(shape) != 4:
            raise ConfigError(f"{IMAGE_MODEL}: the input must be float32 [N, 3, S, S], not {shape}")
        for axis, want in ((1, 3), (2, size), (3, size)):
            got = _static(shape[axis])
            if got is not None and got != want:
                raise ConfigError(
                    f"{IMAGE_MODEL} expects input shape {shape}, but {CONFIG} gives "
                    f"[N, 3, {size}, {size}]"
                )
        self._check_output(session, IMAGE_MODEL)
        return session

    def _text_session(self) -> tuple[Any, Any]:
        return self._text.get()

    def _load_text_tower(self) -> tuple[Any, Any]:
        tokenizer = self._load_tokenizer()
        session = self._session(TEXT_MODEL)
        inputs = session.get_inputs()
        if len(inputs) not in (1, 2):
            raise ConfigError(
                f"{TEXT_MODEL} must have one input (ids) or two (ids, attention mask)"
            )
        if len(inputs) == 2 and "mask" in inputs[0].name.lower():
            inputs = [inputs[1], inputs[0]]
        types = {i.type for i in inputs}
        if len(types) != 1 or not types <= set(_INT_TYPES):
            raise ConfigError(f"{TEXT_MODEL}: inputs must be int64 (or int32) [N, T]")
        for i in inputs:
            if len(i.shape) != 2:
                raise ConfigError(f"{TEXT_MODEL}: input {i.name} must be [N, T]")
            length = _static(i.shape[1])
            if length is not None and length != self.config.context_length:
                raise ConfigError(
                    f"{TEXT_MODEL} takes {length} tokens but {CONFIG} says "
                    f"context_length={self.config.context_length}"
                )
        self._check_output(session, TEXT_MODEL)
        self._id_dtype = _INT_TYPES[inputs[0].type]
        self._text_inputs = (inputs[0].name, inputs[1].name if len(inputs) > 1 else None)
        return session, tokenizer

    def _load_tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        path = self.directory / TOKENIZER
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # the tokenizers library raises plain Exception
            raise ConfigError(f"cannot load {path} as a tokenizers file: {exc}") from exc
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=self.config.context_length)
        return tokenizer

    # ------------------------------------------------------------------ inference

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """RGB, centred square scaled to ``S x S``, normalised: float32 ``[3, S, S]``."""
        return centre_square(image, self.config.image_size, 1.0, self._mean, self._std)

    def tokenize(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask, each ``[N, context_length]``."""
        _, tokenizer = self._text_session()
        if isinstance(texts, str):
            raise TypeError("pass a sequence of strings, not one string")
        try:
            encodings = tokenizer.encode_batch([str(t) for t in texts])
        except Exception as exc:
            raise RecognitionError(f"cannot tokenize text: {exc}") from exc
        length = self.config.context_length
        ids = np.full((len(texts), length), self.config.pad_id, dtype=np.int64)
        mask = np.zeros((len(texts), length), dtype=np.int64)
        for row, enc in enumerate(encodings):
            n = min(len(enc.ids), length)
            ids[row, :n] = enc.ids[:n]
            mask[row, :n] = 1
        return ids, mask

    def _run(self, session: Any, feed: dict[str, np.ndarray], what: str) -> np.ndarray:
        try:
            (out, *_) = session.run(None, feed)
        except Exception as exc:
            raise RecognitionError(f"the CLIP {what} model failed: {exc}") from exc
        out = np.asarray(out, dtype=np.float32)
        n = len(next(iter(feed.values())))
        if out.shape != (n, self.config.embedding_dim):
            raise RecognitionError(
                f"the CLIP {what} model returned shape {out.shape}, expected "
                f"({n}, {self.config.embedding_dim}) (embedding_dim in {CONFIG})"
            )
        return out

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Unit-length image embeddings, float32 ``[len(images), D]``."""
        session = self._image_session()
        if not images:
            return np.zeros((0, self.dimension), dtype=np.float32)
        name = session.get_inputs()[0].name
        outputs = []
        for start in range(0, len(images), _CHUNK):
            batch = np.stack([self.preprocess(im) for im in images[start : start + _CHUNK]])
            outputs.append(self._run(session, {name: batch}, "image"))
        return _normalize(np.concatenate(outputs), "image")

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length text embeddings, float32 ``[len(texts), D]``."""
        session, _ = self._text_session()
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        ids, mask = self.tokenize(texts)
        ids_name, mask_name = self._text_inputs
        outputs = []
        for start in range(0, len(ids), _CHUNK):
            stop = start + _CHUNK
            feed = {ids_name: ids[start:stop].astype(self._id_dtype)}
            if mask_name is not None:
                feed[mask_name] = mask[start:stop].astype(self._id_dtype)
            outputs.append(self._run(session, feed, "text"))
        return _normalize(np.concatenate(outputs), "text")


class ClipImageEmbedder(Analyzer):
    """The image tower of a :class:`ClipModel` as an analyzer (implements ``Recognizer``).

    Each :class:`Analysis` carries the image's unit-length ``embedding``; queries are embedded
    with the same model's :meth:`ClipModel.embed_texts`.
    """

    def __init__(self, model: ClipModel | str | os.PathLike[str], *, threads: int | None = None):
        self.model = model if isinstance(model, ClipModel) else ClipModel(model, threads=threads)
        self.name = f"clip-{self.model.name}"
        self.version = self.model.version

    def analyze_images(self, images: Sequence[Image.Image]) -> list[Analysis]:
        """One Analysis per image, in order, with ``embedding`` set."""
        vectors = self.model.embed_images(images)
        return [Analysis(embedding=[float(v) for v in row]) for row in vectors]
