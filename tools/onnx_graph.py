"""The part every ONNX builder in tools/ shares: nodes and initializers with stable names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper


@dataclass
class OnnxGraph:
    """Accumulates nodes and initializers in call order, so a build is byte-reproducible."""

    nodes: list[onnx.NodeProto] = field(default_factory=list)
    initializers: list[onnx.TensorProto] = field(default_factory=list)
    _names: set[str] = field(default_factory=set)

    def const(self, name: str, value: np.ndarray) -> str:
        """A new initializer; a name used twice is a bug in the builder."""
        if name in self._names:
            raise ValueError(f"duplicate initializer {name}")
        return self.shared(name, value)

    def shared(self, name: str, value: np.ndarray) -> str:
        """An initializer several nodes use (a constant): added once, then reused by name."""
        if name not in self._names:
            self._names.add(name)
            self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attrs: Any) -> str:
        self.nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        return name
