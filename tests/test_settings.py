"""Settings: every one has a default and help, parses from the environment, and is documented in the README."""

from __future__ import annotations

import os

import pytest

from config import REGISTRY, Settings, SettingsError
from tests.conftest import REPO


def test_defaults_parse_without_environment():
    settings = Settings.from_env(environ={})
    assert settings.data_dir == os.path.abspath("./data")
    assert settings.model == "ViT-B-16"
    assert settings.device == "auto"
    assert (settings.host, settings.port) == ("127.0.0.1", 5000)
    assert settings.library == ()
    assert "heic" in settings.image_extensions


def test_every_setting_has_help_and_a_parseable_default():
    fields = {f for f in Settings.__dataclass_fields__}
    assert {s.field for s in REGISTRY} == fields
    for setting in REGISTRY:
        assert setting.env.startswith("MS_")
        assert len(setting.help) > 20, setting.env
        setting.parse(setting.default)


def test_every_setting_is_documented_in_the_readme():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = [s.env for s in REGISTRY if f"`{s.env}`" not in readme]
    assert not missing, f"settings not documented in README.md: {missing}"


def test_library_takes_several_folders(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    settings = Settings.from_env(environ={"MS_LIBRARY": f"{a}{os.pathsep}{b}"})
    assert settings.library == (str(a), str(b))


@pytest.mark.parametrize(
    ("env", "value"),
    [("MS_PORT", "http"), ("MS_PORT", "70000"), ("MS_DEVICE", "tpu"), ("MS_BATCH_SIZE", "0"), ("MS_OFFLINE", "maybe")],
)
def test_bad_values_name_the_variable(env, value):
    with pytest.raises(SettingsError, match=env):
        Settings.from_env(environ={env: value})


def test_unknown_override_is_refused():
    with pytest.raises(SettingsError, match="unknown"):
        Settings.from_env(environ={}, no_such_setting=1)
