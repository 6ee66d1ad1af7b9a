"""onnxruntime settings shared by every analyzer."""

from __future__ import annotations

import os
from typing import Any


def available_cpus() -> int:
    """CPUs this process may run on (respects affinity masks and container CPU sets)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def session_options(threads: int) -> Any:
    """CPU session options: `threads` intra-op threads, sequential, all graph optimisations,
    quiet, and no busy-waiting between operators (the worker's fetch/decode threads need the
    same cores; measured in bench/bench_pipeline.py)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options
