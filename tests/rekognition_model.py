"""Check raw Rekognition JSON answers against botocore's own service model: every required
member present, every member known, every value of the type (and enum) the model says."""

from __future__ import annotations

import json
import re
from typing import Any

import botocore.session
from botocore.model import Shape

MODEL = botocore.session.get_session().get_service_model("rekognition")


def problems(shape: Shape, value: Any, path: str = "$") -> list[str]:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: {kind} expected, got {type(value).__name__}"]
        found = [f"{path}.{name}: unknown member" for name in value if name not in shape.members]
        required = shape.metadata.get("required", [])
        found += [f"{path}.{name}: required, missing" for name in required if name not in value]
        for name, member in shape.members.items():
            if name in value:
                found += problems(member, value[name], f"{path}.{name}")
        return found
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: list expected"]
        return [p for i, v in enumerate(value) for p in problems(shape.member, v, f"{path}[{i}]")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: map expected"]
        return [p for k, v in value.items() for p in problems(shape.value, v, f"{path}[{k}]")]
    if kind == "string":
        if not isinstance(value, str):
            return [f"{path}: string expected, got {value!r}"]
        enum = shape.metadata.get("enum")
        if enum and value not in enum:
            return [f"{path}: {value!r} not in {enum}"]
        pattern = shape.metadata.get("pattern")
        if pattern and not re.fullmatch(pattern, value):
            return [f"{path}: {value!r} does not match {pattern}"]
        return []
    if kind in ("integer", "long"):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return _in_range(shape, value, path) if ok else [f"{path}: integer expected, got {value!r}"]
    if kind in ("float", "double", "timestamp"):  # JSON 1.1 sends timestamps as epoch seconds
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return _in_range(shape, value, path) if ok else [f"{path}: number expected, got {value!r}"]
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{path}: boolean expected"]
    if kind == "blob":
        return [] if isinstance(value, str) else [f"{path}: base64 text expected"]
    return [f"{path}: unchecked type {kind}"]


def _in_range(shape: Shape, value: float, path: str) -> list[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        return [f"{path}: {value} outside [{low}, {high}]"]
    return []


def output_problems(operation: str, raw: bytes) -> list[str]:
    return problems(MODEL.operation_model(operation).output_shape, json.loads(raw))


def error_problems(operation: str, raw: bytes) -> list[str]:
    """An error answer: `__type` names an error the operation declares, with its message."""
    body = json.loads(raw)
    declared = {e.name for e in MODEL.operation_model(operation).error_shapes}
    code = str(body.get("__type", "")).rsplit("#", 1)[-1]
    found = [] if code in declared else [f"{code!r} is not an error of {operation}"]
    return found + ([] if body.get("message") else ["no message"])


class RawAnswers:
    """Registers on a boto3 client and keeps each call's raw answer: (operation, status, body)."""

    def __init__(self, client: Any) -> None:
        self.calls: list[tuple[str, int, bytes]] = []
        client.meta.events.register("after-call.rekognition", self._record)

    def _record(self, http_response: Any, model: Any, **_: Any) -> None:
        self.calls.append((model.name, http_response.status_code, http_response.content))

    def check_last(self) -> tuple[str, int, bytes]:
        """The last answer, asserted to fit the model."""
        operation, status, raw = self.calls[-1]
        found = output_problems(operation, raw) if status == 200 else error_problems(operation, raw)
        assert found == [], found
        return operation, status, raw
