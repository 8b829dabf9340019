"""Settings: each declared once in config.py, with a default and help; parsed from the environment with errors that
name the variable; the README's table and ``--help`` are generated from the declarations and checked here."""

from __future__ import annotations

import os
import re

import pytest

import app
from config import Settings, SettingsError, env_text
from materialsearch import cli, settings_doc
from tests.conftest import REPO

INFOS = Settings.describe()


def test_defaults_parse_without_environment():
    settings = Settings.from_env(environ={})
    assert settings.data_dir == os.path.abspath("./data")
    assert settings.model == "ViT-B-16"
    assert settings.device == "auto"
    assert (settings.host, settings.port) == ("127.0.0.1", 5000)
    assert settings.library == ()
    assert "heic" in settings.image_extensions
    assert settings.frame_interval == 2.0 and isinstance(settings.frame_interval, float)
    assert 1 <= settings.decode_threads <= 4


def test_every_setting_is_declared_with_a_variable_and_help():
    assert [info.name for info in INFOS] == list(Settings.model_fields)
    assert len({info.env for info in INFOS}) == len(INFOS)
    for info in INFOS:
        assert re.fullmatch(r"MS_[A-Z0-9_]+", info.env), info.env
        assert len(info.help) > 20, info.env
    assert next(i.env for i in INFOS if i.name == "index_kind") == "MS_INDEX"  # the one variable not named as its field


@pytest.mark.parametrize("info", [i for i in INFOS if i.name != "decode_threads"], ids=lambda i: i.env)
def test_the_documented_default_is_the_default(info):
    # The README shows each default as one would write it; written so, it gives the same value as leaving it unset.
    unset = getattr(Settings.from_env(environ={}), info.name)
    assert getattr(Settings.from_env(environ={info.env: info.default}), info.name) == unset
    assert env_text(unset) == info.default or info.name == "data_dir"  # ./data is made absolute


def test_a_computed_default_is_described():
    (threads,) = [i for i in INFOS if i.name == "decode_threads"]
    assert threads.default == "min(4, CPU cores)"
    assert Settings.from_env(environ={}).decode_threads == min(4, os.cpu_count() or 1)


def test_the_readme_table_is_generated_from_the_declarations():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert settings_doc.readme_with_table(readme) == readme, (
        "README.md's settings table is out of date: run python -m materialsearch settings-doc --write"
    )
    for info in INFOS:
        assert f"| `{info.env}` | `{info.default or '(empty)'}` | {info.help} |" in readme


def test_settings_doc_rewrites_a_stale_table(tmp_path):
    readme = tmp_path / "README.md"
    current = (REPO / "README.md").read_text(encoding="utf-8")
    drifted = current.replace("Address the web server listens on.", "Where to listen.")
    assert drifted != current
    readme.write_text(drifted, encoding="utf-8")
    assert settings_doc.write_readme(readme) is True
    assert readme.read_text(encoding="utf-8") == current
    assert settings_doc.write_readme(readme) is False
    readme.write_text("# no table here\n", encoding="utf-8")
    with pytest.raises(ValueError, match="markers"):
        settings_doc.write_readme(readme)


def test_settings_doc_command_prints_the_table(capsys):
    assert cli.main(["settings-doc"]) == 0
    assert capsys.readouterr().out == settings_doc.markdown_table()


@pytest.mark.parametrize("entry", [cli.main, app.main], ids=["python -m materialsearch", "python app.py"])
def test_help_lists_every_setting_from_the_declarations(entry, capsys):
    with pytest.raises(SystemExit) as exited:
        entry(["--help"])
    assert exited.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    for info in INFOS:
        assert f"{info.env} (default: {info.default or 'empty'}) {info.help.replace('`', '')}" in out, info.env


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


def test_every_bad_value_is_named_at_once():
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(environ={"MS_INDEX": "hnsw", "MS_PRECISION": "fp8", "MS_PORT": "5000"})
    message = str(caught.value)
    assert "MS_INDEX='hnsw' is not valid" in message and "'flat'" in message
    assert "MS_PRECISION='fp8' is not valid" in message and "MS_PORT" not in message


def test_unknown_override_is_refused():
    with pytest.raises(SettingsError, match="unknown"):
        Settings.from_env(environ={}, no_such_setting=1)


def test_overrides_win_and_strings_parse_like_the_environment():
    environ = {"MS_INDEX": "ivf", "MS_PORT": "81", "MS_BACKEND": "torch"}
    settings = Settings.from_env(environ=environ, index_kind="flat", port="82", scan_window="22:30-07:00")
    assert (settings.index_kind, settings.port, settings.backend) == ("flat", 82, "torch")
    assert settings.scan_window == (22 * 60 + 30, 7 * 60)
    # Ready values skip the text rules (tests use a one-second interval) but not the type.
    ready = Settings.from_env(environ={}, scan_interval=1, library=["/photos"], scan_window=(60, 120))
    assert (ready.scan_interval, ready.library, ready.scan_window) == (1, ("/photos",), (60, 120))
    with pytest.raises(SettingsError, match="MS_PORT"):
        Settings.from_env(environ={}, port="http")
    assert Settings.from_env(environ={"MS_BACKEND": " ONNX "}).backend == "onnx"


def test_the_environment_is_os_environ_by_default_and_only_it(monkeypatch):
    monkeypatch.setenv("MS_PAGE_SIZE", "12")
    assert Settings.from_env().page_size == 12
    assert Settings.from_env(environ={}).page_size == 40  # a given mapping is read instead, never mixed in
    assert Settings().page_size == 40  # plain construction is declarations and keywords only


def test_replace_changes_values_and_checks_them():
    settings = Settings.from_env(environ={}, password="secret")
    changed = settings.replace(backend="onnx", precision="fp32")
    assert (changed.backend, changed.precision, changed.password) == ("onnx", "fp32", "secret")
    assert settings.backend == "auto"
    with pytest.raises(SettingsError, match="unknown"):
        settings.replace(no_such_setting=1)
    with pytest.raises(SettingsError, match="MS_PRECISION"):
        settings.replace(precision="fp8")


def test_settings_are_frozen_and_keep_passwords_out_of_repr():
    settings = Settings.from_env(environ={}, password="hunter2", password_hash="scrypt$x")
    assert "hunter2" not in repr(settings) and "scrypt" not in repr(settings)
    with pytest.raises(ValueError):
        settings.port = 1
    assert settings.models_dir == os.path.join(settings.data_dir, "models")
