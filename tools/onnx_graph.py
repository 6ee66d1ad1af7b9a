"""The part every ONNX builder in tools/ shares: nodes and initializers with stable names, and
the model around them (opset, IR version, producer)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # onnxruntime >= 1.17 reads IR 8 / opset 17


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

    def model(
        self,
        name: str,
        inputs: list[onnx.ValueInfoProto],
        outputs: list[onnx.ValueInfoProto],
        producer: str,
    ) -> onnx.ModelProto:
        """The graph as a model: opset OPSET, IR version IR_VERSION, made by `producer` (the
        tool's path in the repository)."""
        graph = helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.initializers)
        model = helper.make_model(
            graph,
            producer_name=f"imagedex {producer}",
            producer_version="1",
            opset_imports=[helper.make_opsetid("", OPSET)],
        )
        model.ir_version = IR_VERSION
        return model
