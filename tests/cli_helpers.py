"""Run the real `imagedex` command in a subprocess with an isolated data dir."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any


def imagedex_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEDEX_")}
    env.update(
        {
            "IMAGEDEX_DATA_DIR": str(data_dir),
            "IMAGEDEX_RETRY_DELAY": "0.2",
            "IMAGEDEX_POLL_INTERVAL": "0.1",
            **extra,
        }
    )
    return env


def run_cli(
    env: dict[str, str], *args: str, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "imagedex.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"imagedex {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def cli_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(run_cli(env, *args, "--json").stdout)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_up(
    env: dict[str, str], port: int, *extra: str, output: Any = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    """`imagedex up` on 127.0.0.1:`port` in a subprocess; `output` takes stdout and stderr."""
    return subprocess.Popen(
        [sys.executable, "-m", "imagedex.cli.main", "up", "--port", str(port), *extra],
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )


def add_users(env: dict[str, str], roles: dict[str, str], password: str) -> None:
    """`imagedex users add NAME --role ROLE --password-stdin` for each name, through the CLI."""
    for name, role in roles.items():
        subprocess.run(
            [sys.executable, "-m", "imagedex.cli.main", "users", "add", name, "--role", role,
             "--password-stdin"],
            input=password + "\n", env=env, check=True, capture_output=True, text=True,
            timeout=60,
        )  # fmt: skip
