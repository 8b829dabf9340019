"""The Docker image, tested without Docker: the Dockerfile lints clean (hadolint, shellcheck), installs exactly
requirements.txt, sets only real settings and copies paths that exist; the entrypoint drops to PUID/PGID and
copies baked weights; the image's command serves and its HEALTHCHECK passes against it; compose is sane."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from config import Settings
from tests.conftest import REPO

DOCKERFILE = REPO / "Dockerfile"
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
HEALTHCHECK = REPO / "docker" / "healthcheck.py"
VENV_BIN = Path(sys.executable).parent
SETTINGS = {s.env for s in Settings.describe()}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        current += raw.rstrip("\\").strip() + " " if raw.rstrip().endswith("\\") else raw.strip()
        if not raw.rstrip().endswith("\\"):
            if current:
                keyword, _, rest = current.partition(" ")
                lines.append((keyword.upper(), rest.strip()))
            current = ""
    return lines


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each build stage."""
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def final_stage() -> list[tuple[str, str]]:
    return stages()[-1]


def tool(name: str) -> str:
    """A linter binary installed from tests/requirements.txt (a pip wheel), or a failure/skip saying so."""
    path = shutil.which(name, path=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    if path is None:
        message = f"{name} is not installed: pip install -r tests/requirements.txt"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


# --- lint -------------------------------------------------------------------------------------------------------
def test_hadolint_passes():
    hadolint = tool("hadolint")
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}  # RUN lines: shellcheck
    result = subprocess.run([hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_shellcheck_passes_on_the_entrypoint():
    result = subprocess.run([tool("shellcheck"), str(ENTRYPOINT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# --- what the Dockerfile relies on --------------------------------------------------------------------------------
def test_dependencies_come_from_requirements_txt_only():
    runs = [rest for keyword, rest in instructions() if keyword == "RUN" and "pip install" in rest]
    assert len(runs) == 2, runs
    install, swap = runs
    # The one other install: opencv-python (which rapidocr requires; its cv2 links libGL) swapped for the headless
    # build of the very version requirements.txt pins.
    assert "pip uninstall -y opencv-python " in swap
    assert '"opencv-python-headless==${OPENCV_VERSION}"' in swap and "--no-deps" in swap
    assert "OPENCV_VERSION=\"$(sed -n 's/^opencv-python==//p' /tmp/requirements.txt)\"" in swap
    assert "-r /tmp/requirements.txt" in install
    words = shlex.split(install.split("pip install", 1)[1].split("&&")[0])
    words = [w for w in words if not w.startswith("${TORCH_INDEX_URL")]  # the optional extra index, checked below
    packages = [w for w in words if not w.startswith("-") and "requirements.txt" not in w and "://" not in w]
    assert packages == [], f"packages installed besides requirements.txt: {packages}"
    assert "==" not in install
    # CPU wheels by default: PyTorch's index for the chosen variant, as an extra index only (none when
    # TORCH_INDEX_URL is set empty: then PyPI's torch, the CUDA build).
    assert '${TORCH_INDEX_URL:+--extra-index-url "${TORCH_INDEX_URL}"}' in install
    assert ("ARG", "TORCH_VARIANT=cpu") in instructions()
    assert ("ARG", "TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_VARIANT}") in instructions()
    copies = [rest for keyword, rest in instructions() if keyword == "COPY" and "requirements.txt" in rest]
    assert copies == ["requirements.txt /tmp/requirements.txt"]
    pins = (REPO / "requirements.txt").read_text(encoding="utf-8")
    assert re.search(r"^torch==\S+$", pins, re.M) and re.search(r"^torchvision==\S+$", pins, re.M)


def test_environment_and_runtime_settings():
    final = final_stage()
    env: dict[str, str] = {}
    for keyword, rest in final:
        if keyword == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(rest))
    ms = {k for k in env if k.startswith("MS_")}
    assert ms <= SETTINGS, f"ENV names settings that do not exist: {ms - SETTINGS}"
    assert env["MS_HOST"] == "0.0.0.0" and env["MS_DATA_DIR"] == "/data" and env["MS_LIBRARY"] == "/photos"
    assert env["PUID"] == "1000" and env["PGID"] == "1000"
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert ("VOLUME", "/data") in final
    assert ("EXPOSE", env["MS_PORT"]) in final
    entrypoint = json.loads(dict(final)["ENTRYPOINT"])
    assert entrypoint == ["/usr/bin/tini", "--", "/app/docker/entrypoint.sh"]
    assert json.loads(dict(final)["CMD"]) == ["python", "app.py"]
    healthcheck = dict(final)["HEALTHCHECK"]
    assert healthcheck.endswith('CMD ["python", "/app/docker/healthcheck.py"]') and "--start-period=" in healthcheck
    assert ("WORKDIR", "/app") in final
    # tini is installed in the final stage; setpriv comes with the base image's util-linux.
    assert any(k == "RUN" and "install" in r and " tini" in r for k, r in final)
    assert "USER" not in dict(final), "the entrypoint must start as root to honour PUID/PGID, then drop it"


def test_every_copied_path_exists_and_is_in_the_build_context():
    ignored = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = []
    for keyword, rest in instructions():
        if keyword != "COPY" or "--from=" in rest:
            continue
        words = [w for w in shlex.split(rest) if not w.startswith("--")]
        sources += words[:-1]
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such path"
        for pattern in ignored:
            assert not fnmatch.fnmatch(source.rstrip("/"), pattern.rstrip("/")), f"{source} is in .dockerignore"
    # Everything the app reads at run time is copied.
    assert {"app.py", "config.py", "materialsearch/", "templates/", "static/"} <= set(sources)
    assert {"docker/entrypoint.sh", "docker/healthcheck.py"} <= set(sources)
    for script in (ENTRYPOINT, HEALTHCHECK):
        assert os.access(script, os.X_OK), f"{script} is not executable"
    # The weights stage runs the same CLI command the README documents for offline machines.
    assert "python -m materialsearch download-model" in dict(stages()[1])["RUN"]


# --- entrypoint -------------------------------------------------------------------------------------------------
def run_entrypoint(tmp_path, *command, **env):
    environ = {
        "PATH": os.environ["PATH"],
        "MS_DATA_DIR": str(tmp_path / "data"),
        "MS_BAKED_MODELS": str(tmp_path / "baked"),
        **env,
    }
    return subprocess.run(["sh", str(ENTRYPOINT), *command], capture_output=True, text=True, env=environ, timeout=60)


def test_entrypoint_copies_baked_weights_without_overwriting(tmp_path):
    (tmp_path / "baked").mkdir()
    (tmp_path / "baked" / "clip_cn_vit-b-16.pt").write_bytes(b"baked weights")
    (tmp_path / "baked" / "clip_cn_rn50.pt").write_bytes(b"baked rn50")
    (tmp_path / "data" / "models").mkdir(parents=True)
    (tmp_path / "data" / "models" / "clip_cn_rn50.pt").write_bytes(b"the user's own copy")
    uid, gid = os.getuid(), os.getgid()
    result = run_entrypoint(tmp_path, "true", PUID=str(uid), PGID=str(gid))
    assert result.returncode == 0, result.stderr
    models = tmp_path / "data" / "models"
    assert (models / "clip_cn_vit-b-16.pt").read_bytes() == b"baked weights"
    assert (models / "clip_cn_rn50.pt").read_bytes() == b"the user's own copy"
    assert sorted(p.name for p in models.iterdir()) == ["clip_cn_rn50.pt", "clip_cn_vit-b-16.pt"]


def test_entrypoint_refuses_bad_ids(tmp_path):
    result = run_entrypoint(tmp_path, "true", PUID="abc", PGID="1000")
    assert result.returncode == 2 and "must be numbers" in result.stderr


@pytest.mark.skipif(os.getuid() != 0, reason="dropping to another uid needs root (Docker starts the entrypoint so)")
def test_entrypoint_as_root_runs_the_command_as_puid_pgid():
    # Not pytest's tmp_path: its parents are private to root, and the dropped user must reach the data dir.
    tmp_path = Path(tempfile.mkdtemp(prefix="ms-entrypoint-"))
    os.chmod(tmp_path, 0o755)
    try:
        check_drop_to_puid_pgid(tmp_path)
    finally:
        shutil.rmtree(tmp_path)


def check_drop_to_puid_pgid(tmp_path: Path) -> None:
    (tmp_path / "baked").mkdir()
    (tmp_path / "baked" / "w.pt").write_bytes(b"w")
    result = run_entrypoint(tmp_path, "sh", "-c", "id -u; id -g; id -G; touch $MS_DATA_DIR/x", PUID="4321", PGID="4322")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["4321", "4322", "4322"]  # no supplementary groups of root's left
    data = tmp_path / "data"
    for path in [data, data / "models", data / "models" / "w.pt", data / "x"]:
        assert (path.stat().st_uid, path.stat().st_gid) == (4321, 4322), path
    as_root = run_entrypoint(tmp_path, "id", "-u", PUID="0", PGID="0")
    assert as_root.stdout.strip() == "0" and "runs materialsearch as root" in as_root.stderr


def test_entrypoint_as_a_non_root_user_just_runs_the_command(tmp_path):
    # What `docker run --user` does: the script must not try to change ids.
    if os.getuid() == 0:
        command = ["setpriv", "--reuid=4321", "--regid=4321", "--clear-groups", "--", "sh", str(ENTRYPOINT), "id", "-u"]
        os.chmod(tmp_path, 0o777)
    else:
        command = ["sh", str(ENTRYPOINT), "id", "-u"]
    env = {"PATH": os.environ["PATH"], "MS_DATA_DIR": str(tmp_path / "data"), "PUID": "1", "PGID": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(4321 if os.getuid() == 0 else os.getuid())


# --- the image's command and health check, outside Docker ----------------------------------------------------------
def healthcheck(port: int) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "MS_HOST": "0.0.0.0", "MS_PORT": str(port)}
    return subprocess.run([sys.executable, str(HEALTHCHECK)], capture_output=True, text=True, env=env, timeout=30)


@pytest.mark.slow
def test_image_command_serves_and_passes_its_health_check(tmp_path, tiny_model, media_dir):
    library = tmp_path / "photos"
    library.mkdir()
    shutil.copy2(media_dir / "jpg_orient1.jpg", library / "a.jpg")
    command = json.loads(dict(final_stage())["CMD"])
    command[0] = sys.executable  # the image's `python` is its venv's, first on PATH
    env = {
        "PATH": os.environ["PATH"],
        "PUID": str(os.getuid()),
        "PGID": str(os.getgid()),
        "MS_HOST": "0.0.0.0",  # as in the image
        "MS_PORT": "0",  # a free port; the server prints the one it got
        "MS_DATA_DIR": str(tmp_path / "data"),
        "MS_LIBRARY": str(library),
        "MS_MODEL": tiny_model,
        "MS_BAKED_MODELS": str(tmp_path / "none"),
    }
    process = subprocess.Popen(
        ["sh", str(ENTRYPOINT), *command],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        port = None
        for line in process.stdout:
            output.append(line)
            match = re.match(r"materialsearch: http://0\.0\.0\.0:(\d+)", line)
            if match:
                port = int(match.group(1))
                break
        assert port, "".join(output)
        result = healthcheck(port)
        assert result.returncode == 0, result.stderr + "".join(output)
        assert "no password is set" in "".join(output)  # the start-up warning for MS_HOST=0.0.0.0
        process.send_signal(signal.SIGTERM)  # what `docker stop` sends (through tini)
        rest, _ = process.communicate(timeout=60)
        output.append(rest)
        assert process.returncode == 0, "".join(output)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert healthcheck(port).returncode == 1  # and it notices when the server is gone


def test_onnx_runtime_telemetry_is_off_before_onnxruntime_loads():
    # ONNX Runtime flushes telemetry to Microsoft at exit; in a container that cannot resolve names that held
    # `docker stop` ~9 s (tests/test_docker_image.py measures the stop). The product turns it off on import.
    code = (
        "import os, sys; assert 'onnxruntime' not in sys.modules; import materialsearch, onnxruntime; "
        "print(os.environ.get('ORT_DISABLE_TELEMETRY'))"
    )
    env = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env)
    assert result.returncode == 0 and result.stdout.strip() == "1", result.stdout + result.stderr
    # Whoever sets it keeps their choice.
    env["ORT_DISABLE_TELEMETRY"] = "0"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env)
    assert result.stdout.strip() == "0", result.stdout + result.stderr


def test_openmp_threads_sleep_when_idle_unless_the_environment_says_otherwise():
    # torch's OpenMP threads spinning between the model's parallel regions took the decode threads' CPU during a
    # scan. The product makes them passive on import, before torch loads libgomp; a user's own setting is kept and
    # reaches libgomp (ACTIVE threads spin on while the main thread sleeps: CPU time without work).
    code = (
        "import os, sys, time; assert 'torch' not in sys.modules; import materialsearch, torch; "
        "torch.set_num_threads(2); a = torch.rand(512, 512); [a @ a for _ in range(20)]; "
        "t = time.process_time(); time.sleep(0.5); "
        "print(os.environ.get('OMP_WAIT_POLICY'), round(time.process_time() - t, 3))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env)
    policy, idle_cpu_s = result.stdout.split()
    assert result.returncode == 0 and policy == "PASSIVE", result.stdout + result.stderr
    assert float(idle_cpu_s) < 0.1
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, env=env)
    policy, idle_cpu_s = result.stdout.split()
    assert policy == "ACTIVE" and float(idle_cpu_s) > 0.2, result.stdout + result.stderr


def test_healthcheck_address():
    sys.path.insert(0, str(HEALTHCHECK.parent))
    try:
        from healthcheck import health_url
    finally:
        sys.path.remove(str(HEALTHCHECK.parent))
    assert health_url({"MS_HOST": "0.0.0.0", "MS_PORT": "5000"}) == "http://127.0.0.1:5000/healthz"
    assert health_url({}) == "http://127.0.0.1:5000/healthz"
    assert health_url({"MS_HOST": "::1", "MS_PORT": "81"}) == "http://[::1]:81/healthz"
    assert health_url({"MS_HOST": "10.0.0.2", "MS_PORT": "81"}) == "http://10.0.0.2:81/healthz"


# --- compose ----------------------------------------------------------------------------------------------------
def test_compose_example():
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    (service,) = [s for s in compose["services"].values() if not s.get("profiles")]  # the default services
    assert service["build"] == "." and service["restart"] == "unless-stopped"
    assert "5000:5000" in service["ports"]
    volumes = service["volumes"]
    assert any(v.endswith(":/data") for v in volumes)
    assert any(v.endswith(":/photos:ro") for v in volumes), "the library must be mounted read-only"
    env = service["environment"]
    ms = {k for k in env if k.startswith("MS_")}
    assert ms <= SETTINGS, f"unknown settings: {ms - SETTINGS}"
    assert {"PUID", "PGID"} <= set(env)
    assert env["MS_PASSWORD"].startswith("${MS_PASSWORD:?"), "compose must refuse to start without a password"
    limits = service["deploy"]["resources"]["limits"]
    assert limits["cpus"] and limits["memory"]


def test_compose_postgres_profile():
    """``--profile postgres`` adds PostgreSQL with pgvector; the app uses it when .env sets MS_DATABASE_URL, waits
    for it to be healthy, and runs without it (SQLite) otherwise."""
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    app, database = compose["services"]["materialsearch"], compose["services"]["postgres"]
    assert database["profiles"] == ["postgres"] and database["image"].startswith("pgvector/pgvector:pg")
    # From .env; not `:?`, which would stop the default set-up (compose reads every service's variables).
    assert database["environment"]["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD:-}"
    assert any(v.endswith(":/var/lib/postgresql") for v in database["volumes"]), "the database must outlive it"
    assert "pg_isready" in " ".join(database["healthcheck"]["test"])
    assert app["environment"]["MS_DATABASE_URL"] == "${MS_DATABASE_URL:-}"  # empty: SQLite, as before
    assert "depends_on" not in app  # the app waits for the database itself (older compose rejects `required`)
