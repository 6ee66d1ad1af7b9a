import json
from pathlib import Path

import pytest

from imagedex.config import load_settings
from imagedex.errors import ConfigError


def test_precedence_defaults_toml_env_flags(tmp_path: Path) -> None:
    toml = tmp_path / "imagedex.toml"
    toml.write_text("[imagedex]\nbatch_size = 4\nport = 9000\nmax_labels = 7\n")
    env = {"IMAGEDEX_PORT": "9100", "IMAGEDEX_DATA_DIR": str(tmp_path / "env-data")}
    s = load_settings(toml, environ=env, max_labels=3)
    assert s.batch_size == 4  # from the file
    assert s.port == 9100  # env beats the file
    assert s.max_labels == 3  # flags beat env
    assert s.data_dir == tmp_path / "env-data"
    assert s.store_url == (tmp_path / "env-data" / "images").resolve().as_uri()
    assert s.queue == "sqlite" and s.index == "sqlite"


def test_config_file_from_env(tmp_path: Path) -> None:
    toml = tmp_path / "other.toml"
    toml.write_text("visibility_timeout = 5\n")
    assert load_settings(environ={"IMAGEDEX_CONFIG": str(toml)}).visibility_timeout == 5.0


@pytest.mark.parametrize(
    "content, message",
    [
        ("bogus_setting = 1\n", "unknown settings bogus_setting"),
        ("port = 'eighty'\n", "invalid value"),
        ("batch_size = 0\n", "batch_size"),
        ("this is not toml", "cannot read"),
    ],
)
def test_bad_settings_are_clear(tmp_path: Path, content: str, message: str) -> None:
    toml = tmp_path / "imagedex.toml"
    toml.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_settings(toml, environ={})


def test_bad_env_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"max_receive_count.*invalid value"):
        load_settings(environ={"IMAGEDEX_MAX_RECEIVE_COUNT": "lots"})


def test_config_command_hides_secrets(tmp_path: Path) -> None:
    from cli_helpers import imagedex_env, run_cli

    env = imagedex_env(
        tmp_path, IMAGEDEX_SMTP_PASSWORD="hunter2-smtp", IMAGEDEX_WEBHOOK_SECRET="whsec-42"
    )
    shown = run_cli(env, "config", "--json").stdout
    assert "hunter2-smtp" not in shown and "whsec-42" not in shown
    settings = json.loads(shown)
    assert settings["smtp_password"] == "(set)" and settings["index_password"] == ""
