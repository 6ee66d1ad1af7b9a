"""Real servers for the tests, started on 127.0.0.1 and stopped when the tests end.

Each child gets PR_SET_PDEATHSIG, so it dies with the test process even if pytest is killed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence

import httpx

from cli_helpers import free_port


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def start_process(
    args: Sequence[str], env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        list(args),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )


def wait_http(
    url: str, timeout: float = 60, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            pass
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {timeout}s")
        time.sleep(0.1)


class MotoServer:
    """moto in server mode: real HTTP S3/SQS/Rekognition endpoints on loopback."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        moto = os.path.join(os.path.dirname(sys.executable), "moto_server")
        self.process = start_process([moto, "-H", "127.0.0.1", "-p", str(self.port)])
        wait_http(self.url + "/moto-api/", process=self.process)

    def reset(self) -> None:
        httpx.post(self.url + "/moto-api/reset")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def aws_env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_MAX_ATTEMPTS": "3",
        }
