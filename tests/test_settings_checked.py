"""Settings are checked before any command starts: one line per bad setting naming it, where it
came from, its value and what it may be; non-zero exit, no traceback, nothing half-started."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from cli_helpers import free_port, imagedex_env, run_cli, start_up
from imagedex.config import load_settings, read_settings
from imagedex.errors import ConfigError

ANALYZER_NAMES = "imagenet, objects, moderation, faces, people, ocr, rekognition"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("RECOGNIZERS", "imagenet,bogus", ["'bogus'", ANALYZER_NAMES]),
        ("RECOGNIZERS", "imagenet,objetcs", ["did you mean 'objects'"]),
        ("INDEX", "opensearch+htp://127.0.0.1:9200/images", ["did you mean opensearch+http://"]),
        ("INDEX", "opensearch+http://127.0.0.1:92000/images", ["Port out of range", "sqlite"]),
        ("INDEX", "opensearch+http://127.0.0.1:9200/Images", ["lower-case"]),
        ("STORE", "s4://photos", ["did you mean s3://", "file:///path/to/folder"]),
        ("QUEUE", "sqs://", ["name the queue", "sqs://queue-name"]),
        ("QUEUE", "rabbitmq://host/q", ["unknown queue URL scheme 'rabbitmq'"]),
        ("PUBLIC_URL", "imagedex.example.org", ["http(s)://host"]),
        ("AUTH", "maybe", ["auto, on, off"]),
        ("SMTP_SECURITY", "tls", ["starttls, ssl, none"]),
        ("INDEX_REFRESH", "sometimes", ["wait_for, true, false"]),
        ("TIMEZONE", "Europe/Pariss", ["Europe/Paris"]),
        ("MIN_CONFIDENCE", "150", ["between 0 and 100"]),
        ("PORT", "eighty", ["a whole number"]),
        ("PORT", "70000", ["between 1 and 65535"]),
        ("BATCH_SIZE", "0", ["between 1 and 64"]),
        ("RETRY_DELAY", "-1", ["between 0 and 3600"]),
        ("VISIBILITY_TIMEOUT", "nan", ["a number"]),
        ("SEMANTIC", "perhaps", ["true or false"]),
        ("CLIP_MODEL_DIR", "/no/such/folder", ["no such folder"]),
    ],
)
def test_a_bad_value_is_one_line_naming_setting_value_and_valid_values(
    variable: str, value: str, named: list[str]
) -> None:
    env = {f"IMAGEDEX_{variable}": value}
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=env)
    message = str(caught.value)
    assert "\n" not in message
    name = variable.lower()
    assert f"setting '{name}' (from IMAGEDEX_{variable})" in message
    assert repr(value) in message
    for part in named:
        assert part in message, message


def test_every_bad_setting_is_reported_and_where_it_came_from(tmp_path: Path) -> None:
    toml = tmp_path / "imagedex.toml"
    toml.write_text("recognizers = 'imagenet,nope'\nport = 0\n")
    settings, problems = read_settings(toml, environ={"IMAGEDEX_AUTH": "never"}, batch_size=99)
    assert len(problems) == 4
    assert any(f"setting 'recognizers' (from {toml})" in p for p in problems)
    assert any(f"setting 'port' (from {toml})" in p for p in problems)
    assert any("setting 'auth' (from IMAGEDEX_AUTH)" in p for p in problems)
    assert any("setting 'batch_size' (from the command line)" in p for p in problems)
    assert settings.port == 0 and settings.recognizers == "imagenet,nope"  # kept as given


def test_former_analyzer_names_read_as_the_current_ones() -> None:
    settings = load_settings(environ={"IMAGEDEX_RECOGNIZERS": "imagenet-mobilenet_v2,faces-haar"})
    assert settings.recognizers == "imagenet,faces"


def test_flags_are_checked_too() -> None:
    settings = load_settings(environ={})
    with pytest.raises(ConfigError, match="setting 'port' \\(from the command line\\)"):
        settings.with_overrides(port=0)


def _assert_one_clean_error(proc: subprocess.CompletedProcess[str], *parts: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    for part in parts:
        assert part in proc.stderr, proc.stderr


def test_up_refuses_to_start_on_an_unknown_analyzer(tmp_path: Path) -> None:
    env = imagedex_env(tmp_path / "data", IMAGEDEX_RECOGNIZERS="imagenet,bogus")
    port = free_port()
    with start_up(env, port, output=subprocess.PIPE) as proc:
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail("imagedex up kept running with an unknown analyzer")
    text = output.decode()
    assert proc.returncode != 0 and "Traceback" not in text
    assert "setting 'recognizers' (from IMAGEDEX_RECOGNIZERS)" in text
    assert "'bogus'" in text and ANALYZER_NAMES in text


def test_ingest_wait_fails_at_once_and_stores_nothing(tmp_path: Path) -> None:
    env = imagedex_env(tmp_path / "data", IMAGEDEX_RECOGNIZERS="imagenet,bogus")
    picture = tmp_path / "pic.jpg"
    picture.write_bytes(b"\xff\xd8 not really a jpeg")
    proc = run_cli(env, "ingest", str(picture), "--wait", "--timeout", "20", check=False)
    _assert_one_clean_error(proc, "'bogus'", ANALYZER_NAMES)
    assert not (tmp_path / "data" / "images").exists() or not any(
        (tmp_path / "data" / "images").iterdir()
    )


def test_config_shows_the_settings_and_names_the_bad_ones(tmp_path: Path) -> None:
    env = imagedex_env(tmp_path / "data", IMAGEDEX_RECOGNIZERS="imagenet,bogus")
    proc = run_cli(env, "config", check=False)
    _assert_one_clean_error(proc, "setting 'recognizers'", "'bogus'", ANALYZER_NAMES)
    assert "recognizers = imagenet,bogus" in proc.stdout  # what was given, to find it
    as_json = run_cli(env, "config", "--json", check=False)
    assert as_json.returncode != 0
    shown = json.loads(as_json.stdout)
    assert shown["recognizers"] == "imagenet,bogus"
    assert len(shown["problems"]) == 1 and "'bogus'" in shown["problems"][0]
    fine = json.loads(run_cli(imagedex_env(tmp_path / "data"), "config", "--json").stdout)
    assert fine["problems"] == []


def test_help_still_works_while_a_setting_is_bad(tmp_path: Path) -> None:
    env = imagedex_env(tmp_path / "data", IMAGEDEX_PORT="eighty")
    assert "search [OPTIONS] [TEXT]" in run_cli(env, "search", "--help").stdout
    _assert_one_clean_error(run_cli(env, "status", check=False), "setting 'port'", "'eighty'")


def test_up_fails_loudly_when_its_worker_cannot_start(tmp_path: Path) -> None:
    empty = tmp_path / "not-a-clip-model"
    empty.mkdir()  # a folder, so the setting passes; its files are missing
    env = imagedex_env(tmp_path / "data", IMAGEDEX_CLIP_MODEL_DIR=str(empty))
    port = free_port()
    with start_up(env, port, output=subprocess.PIPE) as proc:
        try:
            output, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail("imagedex up served an API whose worker had died")
    text = output.decode()
    assert proc.returncode != 0 and "Traceback" not in text
    assert "the worker cannot start" in text and "clip.json" in text
