"""The Docker image built and run for real: `docker build`, then the README's `docker run` and `docker compose`
(read-only library, PUID/PGID, a password), checked from outside the container — the HEALTHCHECK turns healthy, the
start-up scan of the shared media completes, search answers over HTTP (and refuses without a token), everything in
/data belongs to PUID:PGID, the library is byte-for-byte untouched, `docker stop` ends it cleanly within the grace
period; and the final image carries no compiler.

Opt-in: the image is several GB and a cold build takes minutes, so these run only when asked for with
`pytest -m docker tests/test_docker_image.py` (`.ci/run` does; see it for starting a daemon). Where no Docker daemon
answers they skip with the reason (and fail under CI=1, which promises one).

The build adapts to the network it finds, the way the README tells a NAS owner:
- base image: `MS_DOCKER_BASE`, else `python:3.11-slim-bookworm` if present or pullable, else one made from Debian's
  packages by `docker/debian-base.sh` (needs root and debootstrap);
- PyTorch: its CPU wheel index when reachable (the Dockerfile's default), else `TORCH_INDEX_URL=` (PyPI's torch,
  the CUDA build: a much larger image that runs the same on a CPU); `MS_DOCKER_TORCH_INDEX` overrides;
- a CA bundle for pip behind a TLS-inspecting proxy: `PIP_CERT` (or `SSL_CERT_FILE`) as the `pip_cert` secret.
The build runs with `--network=host` (a daemon started with `--iptables=false` gives containers no outside route).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.docker]

IMAGE = "materialsearch:docker-test"
DEFAULT_BASE = "python:3.11-slim-bookworm"
DEBIAN_BASE = "local/python:3.11-bookworm"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu/torch/"
PUID, PGID = 4321, 4322  # not the host's user: ownership in /data shows the entrypoint's work
PASSWORD = "correct horse battery staple"
TINY_MODEL = "/data/models/tiny.pt"
DOCKER_RUN_GRACE_S = 30  # the README's `docker run --stop-timeout` (compose: stop_grace_period)
BUILD_TIMEOUT_S = 60 * 60
HEALTHY_WITHIN_S = 150  # the HEALTHCHECK's first probe comes after its 30 s interval
SCAN_WITHIN_S = 600


def _unavailable(reason: str):
    """Skip on a developer's machine; fail under CI, which promises a daemon when it selects these tests."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _run(*args: str, timeout: float = 120, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} → {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
        )
    return result


def _buildkit_client() -> str:
    """A docker CLI that builds with BuildKit (RUN --mount, COPY --chmod): one with the buildx plugin, or a client
    older than 23.0 whose BuildKit is built in (Debian's docker.io ships one as /usr/bin/docker)."""
    candidates = dict.fromkeys(p for p in (os.environ.get("DOCKER"), shutil.which("docker"), "/usr/bin/docker") if p)
    found = []
    for cli in candidates:
        if not os.access(cli, os.X_OK):
            continue
        found.append(cli)
        if _run(cli, "buildx", "version", check=False).returncode == 0:
            return cli
        version = _run(cli, "version", "--format", "{{.Client.Version}}", check=False).stdout.strip()
        if re.match(r"(1\d|2[0-2])\.", version):
            return cli
    _unavailable(f"no docker CLI that builds with BuildKit (buildx plugin, or a client < 23): found {found or 'none'}")
    raise AssertionError("unreachable")


def _base_image(docker: str) -> str:
    wanted = os.environ.get("MS_DOCKER_BASE")
    for image in [wanted] if wanted else [DEFAULT_BASE, DEBIAN_BASE]:
        if _run(docker, "image", "inspect", image, check=False).returncode == 0:
            return image
    if wanted or _run(docker, "pull", DEFAULT_BASE, timeout=600, check=False).returncode == 0:
        return wanted or DEFAULT_BASE
    if os.getuid() != 0 or not shutil.which("debootstrap"):
        _unavailable(f"cannot pull {DEFAULT_BASE}, and making {DEBIAN_BASE} needs root and debootstrap")
    _run("sh", str(REPO / "docker" / "debian-base.sh"), DEBIAN_BASE, timeout=1800)
    return DEBIAN_BASE


def _torch_index_args() -> list[str]:
    """No argument (the Dockerfile's CPU index) where PyTorch's index answers; else PyPI's torch."""
    if "MS_DOCKER_TORCH_INDEX" in os.environ:
        return ["--build-arg", f"TORCH_INDEX_URL={os.environ['MS_DOCKER_TORCH_INDEX']}"]
    try:
        urllib.request.urlopen(TORCH_CPU_INDEX, timeout=15).close()
        return []
    except (OSError, urllib.error.URLError):
        return ["--build-arg", "TORCH_INDEX_URL="]


@pytest.fixture(scope="module")
def docker(request) -> str:
    markexpr = request.config.getoption("markexpr") or ""
    if "docker" not in markexpr or re.search(r"not\s+docker", markexpr):
        pytest.skip("builds and runs the real image (GBs, minutes): pytest -m docker tests/test_docker_image.py")
    cli = shutil.which("docker") or "/usr/bin/docker"
    if not os.access(cli, os.X_OK):
        _unavailable("no docker CLI: apt-get install docker.io")
    info = _run(cli, "info", "--format", "{{.ServerVersion}}", check=False, timeout=30)
    if info.returncode != 0:
        _unavailable(f"no Docker daemon answers ({info.stderr.strip()[:200]}); start one: dockerd --iptables=false")
    return _buildkit_client()


@pytest.fixture(scope="module")
def image(docker) -> str:
    """The image built from this checkout (layers cached between runs; the image it replaces is removed)."""
    previous = _run(docker, "image", "inspect", "--format", "{{.Id}}", IMAGE, check=False).stdout.strip()
    command = [docker, "build", "--network=host", "--build-arg", f"PYTHON_IMAGE={_base_image(docker)}"]
    command += _torch_index_args()
    cert = os.environ.get("PIP_CERT") or os.environ.get("SSL_CERT_FILE")
    if cert and os.path.isfile(cert):
        command += ["--secret", f"id=pip_cert,src={cert}"]
    started = time.monotonic()
    _run(*command, "-t", IMAGE, str(REPO), timeout=BUILD_TIMEOUT_S, env={**os.environ, "DOCKER_BUILDKIT": "1"})
    seconds = time.monotonic() - started
    built = _run(docker, "image", "inspect", "--format", "{{.Id}} {{.Size}}", IMAGE).stdout.split()
    if previous and previous != built[0]:
        _run(docker, "rmi", previous, check=False)  # only ours: other dangling images are left alone
    print(f"\nbuilt {IMAGE} in {seconds:.0f} s ({' '.join(command[2:])}): {int(built[1]) / 1e9:.2f} GB")
    return IMAGE


def _library_state(root: Path) -> dict[str, tuple]:
    """Every path under the library: content digest, mode, owner and mtime (what a write of any kind changes)."""
    state = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        state[str(path.relative_to(root))] = (digest, info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns)
    return state


def _data_dir(tmp_path: Path, docker: str, image: str) -> Path:
    """A data dir holding the tiny test model, written by the image's own command (as PUID:PGID)."""
    data = tmp_path / "data"
    data.mkdir()
    _run(docker, "run", "--rm", "-e", f"PUID={PUID}", "-e", f"PGID={PGID}", "-v", f"{data}:/data", image,
         "python", "-m", "materialsearch", "make-test-model", TINY_MODEL, timeout=300)  # fmt: skip
    return data


class Container:
    """One running container, seen from outside: docker inspect/exec/logs and HTTP on its published port."""

    def __init__(self, docker: str, name: str):
        self.docker, self.name = docker, name
        self.token = ""
        self.find_port()

    def find_port(self) -> None:
        """The host port published for 5000 (another one after each start)."""
        port = _run(self.docker, "port", self.name, "5000/tcp").stdout.split()[0]
        self.base = f"http://{port}"

    def inspect(self, template: str) -> str:
        return _run(self.docker, "inspect", "--format", template, self.name).stdout.strip()

    def logs(self, since: str = "") -> str:
        result = _run(self.docker, "logs", *(["--since", since] if since else []), self.name, check=False)
        return result.stdout + result.stderr

    def fetch(self, path: str, token: str | None = None) -> tuple[int, bytes, str]:
        """(status, body, content type) of a GET, straight to the published port (no proxy)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(urllib.request.Request(self.base + path, headers=headers), timeout=30) as response:
                return response.status, response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read(), exc.headers.get("Content-Type", "")

    def get(self, path: str, token: str | None = None) -> tuple[int, dict]:
        code, body, _ = self.fetch(path, token)
        return code, json.loads(body or b"{}")

    def wait_healthy(self) -> float:
        started = time.monotonic()
        while time.monotonic() - started < HEALTHY_WITHIN_S:
            if self.inspect("{{.State.Status}}") != "running":
                raise AssertionError(f"the container stopped:\n{self.logs()[-4000:]}")
            if self.inspect("{{.State.Health.Status}}") == "healthy":
                return time.monotonic() - started
            time.sleep(2)
        raise AssertionError(f"not healthy in {HEALTHY_WITHIN_S} s: {self.inspect('{{json .State.Health}}')}")

    def create_token(self) -> str:
        # As the README says: docker exec … python -m materialsearch token create NAME
        out = _run(self.docker, "exec", self.name, "python", "-m", "materialsearch", "token", "create", "test")
        self.token = re.search(r"mst_\S+", out.stdout).group(0)
        return self.token

    def wait_scanned(self, after: str = "") -> dict:
        """The status once the start-up scan has finished (one that finished later than ``after``)."""
        started = time.monotonic()
        while time.monotonic() - started < SCAN_WITHIN_S:
            code, status = self.get("/api/status", self.token)
            assert code == 200, status
            last = status["scan"]["last"]
            if status["scan"]["state"] == "idle" and last and last["finished_at"] > after:
                return status
            time.sleep(2)
        raise AssertionError(f"the start-up scan did not finish in {SCAN_WITHIN_S} s:\n{self.logs()[-4000:]}")

    def stop(self, *args: str) -> float:
        started = time.monotonic()
        _run(*args, timeout=120)
        return time.monotonic() - started

    def shutdown_lines(self) -> str:
        """What the stop waited for (the batch in hand of a scan, the OCR or the faces pass), for the report."""
        lines = self.logs().splitlines()
        start = next((i for i, line in enumerate(lines) if "SIGTERM: stopping" in line), len(lines))
        return "\n".join(line[11:160] for line in lines[start:] if "INFO" in line)


def _check_served_and_scanned(container: Container, library: Path) -> dict:
    """Healthy, the start-up scan complete, search answering with a token and refusing without."""
    assert container.get("/api/status")[0] == 401, "a password is set: the API needs a login or a token"
    container.create_token()
    status = container.wait_scanned()
    last = status["scan"]["last"]
    files = [p for p in library.rglob("*") if p.is_file() and p.name != "MANIFEST.tsv"]
    assert last["trigger"] == "start-up" and last["error"] is None, last
    assert last["stats"]["found"] >= len(files) - 5, (last, len(files))  # sidecars (.AAE, .xmp) are not media
    counts = status["counts"]
    assert counts["images"] + counts["videos"] >= 40 and counts["pending"] == 0, counts
    code, found = container.get("/api/search?q=a%20cat%20on%20a%20sofa&limit=5", container.token)
    assert code == 200 and len(found["results"]) == 5, found
    assert all(r["path"].startswith("/photos/") for r in found["results"])
    code, body, kind = container.fetch(found["results"][0]["thumbnail_url"], container.token)
    assert code == 200 and kind.startswith("image/") and len(body) > 500, (code, kind, body[:200])
    assert container.get("/api/search?q=cat")[0] == 401
    assert "no password is set" not in container.logs()
    return last


def _check_owned_by_puid(data: Path) -> None:
    owners = {path: (path.lstat().st_uid, path.lstat().st_gid) for path in [data, *data.rglob("*")]}
    wrong = [f"{path} {uid}:{gid}" for path, (uid, gid) in owners.items() if (uid, gid) != (PUID, PGID)]
    assert not wrong, f"not owned by {PUID}:{PGID}: {wrong[:10]}"
    assert (data / "materialsearch.db").is_file() and (data / "thumbnails").is_dir()


def test_docker_run_as_the_readme_says(docker, image, tmp_path, media_dir):
    library_before = _library_state(media_dir)
    data = _data_dir(tmp_path, docker, image)
    name = f"ms-docker-test-{os.getpid()}"
    # The README's command, with the test model in place of ViT-B-16 and a free loopback port for 5000.
    assert f"--stop-timeout {DOCKER_RUN_GRACE_S} -p 5000:5000" in (REPO / "README.md").read_text(encoding="utf-8")
    run = [docker, "run", "-d", "--name", name, "--restart", "unless-stopped",
           "--stop-timeout", str(DOCKER_RUN_GRACE_S), "-p", "127.0.0.1::5000",
           "-e", f"PUID={PUID}", "-e", f"PGID={PGID}", "-e", f"MS_PASSWORD={PASSWORD}",
           "-e", f"MS_MODEL={TINY_MODEL}", "-e", "MS_OFFLINE=true",
           "-v", f"{data}:/data", "-v", f"{media_dir}:/photos:ro", image]  # fmt: skip
    _run(*run)
    try:
        container = Container(docker, name)
        healthy_s = container.wait_healthy()
        last = _check_served_and_scanned(container, media_dir)
        assert container.inspect("{{.Config.StopTimeout}}") == str(DOCKER_RUN_GRACE_S)
        stop_s = container.stop(docker, "stop", name)  # the container's own grace, as `docker run` above set it
        # 0, not 137: it ended by itself (Docker kills at the end of the grace), and `python app.py` said why.
        assert container.inspect("{{.State.ExitCode}}") == "0", container.logs()[-4000:]
        assert stop_s < DOCKER_RUN_GRACE_S, f"docker stop took {stop_s:.1f} s (grace {DOCKER_RUN_GRACE_S} s)"
        logs = container.logs()
        assert "SIGTERM: stopping" in logs and "materialsearch.app: stopped" in logs and "Traceback" not in logs
        print(f"\ndocker run: healthy after {healthy_s:.0f} s; {last['summary']}; docker stop {stop_s:.1f} s")
        print(container.shutdown_lines())
        idle_stop_s = _check_restart_and_idle_stop(container, last)
        print(f"docker start again: unchanged rescan, idle docker stop {idle_stop_s:.1f} s")
    finally:
        _run(docker, "rm", "-f", name, check=False)
    _check_owned_by_puid(data)
    assert _library_state(media_dir) == library_before, "the library changed"


def _check_restart_and_idle_stop(container: Container, first: dict) -> float:
    """`docker start` again (a NAS reboot): the same /data, an unchanged rescan; then, with nothing in hand, the stop
    takes well under Docker's default 10 s grace (an exit that waited on ONNX Runtime's telemetry took ~9 s)."""
    since = _run(container.docker, "info", "--format", "{{.SystemTime}}").stdout.strip()
    _run(container.docker, "start", container.name)
    container.find_port()
    container.wait_healthy()
    rescan = container.wait_scanned(after=first["finished_at"])["scan"]["last"]["stats"]
    assert rescan["added"] == rescan["updated"] == 0 and rescan["unchanged"] == first["stats"]["found"], rescan
    started = time.monotonic()
    while not all(f"{job} pass finished" in container.logs(since) for job in ("OCR", "faces")):
        assert time.monotonic() - started < SCAN_WITHIN_S, container.logs(since)[-4000:]
        time.sleep(2)
    stop_s = container.stop(container.docker, "stop", container.name)
    assert container.inspect("{{.State.ExitCode}}") == "0", container.logs(since)[-4000:]
    assert stop_s < 10, f"an idle docker stop took {stop_s:.1f} s:\n{container.shutdown_lines()}"
    return stop_s


def _compose_cli(docker: str) -> list[str]:
    if _run(docker, "compose", "version", check=False).returncode == 0:
        return [docker, "compose"]
    if shutil.which("docker-compose"):
        return [shutil.which("docker-compose")]
    _unavailable("no docker compose (plugin) or docker-compose: apt-get install docker-compose")
    raise AssertionError("unreachable")


def test_docker_compose_as_the_readme_says(docker, image, tmp_path, media_dir):
    """docker-compose.yml edited as its comment says (paths, PUID/PGID), the password in .env, `up -d`."""
    compose = _compose_cli(docker)
    library_before = _library_state(media_dir)
    project = tmp_path / "nas"
    project.mkdir()
    _data_dir(project, docker, image)  # ./data beside the compose file, holding the test model
    spec = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    service = spec["services"]["materialsearch"]
    assert "./data:/data" in service["volumes"] and "/volume1/photo:/photos:ro" in service["volumes"]
    service["volumes"] = ["./data:/data", f"{media_dir}:/photos:ro"]
    service["image"] = image
    service["container_name"] = f"ms-compose-test-{os.getpid()}"
    service["ports"] = ["127.0.0.1::5000"]
    service["environment"].update(PUID=str(PUID), PGID=str(PGID), MS_MODEL=TINY_MODEL, MS_OFFLINE="true")
    (project / "docker-compose.yml").write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    (project / ".env").write_text(f"MS_PASSWORD={PASSWORD}\n", encoding="utf-8")
    grace = int(str(service["stop_grace_period"]).rstrip("s"))
    name = service["container_name"]
    command = [*compose, "--project-name", f"mscomposetest{os.getpid()}", "--project-directory", str(project)]
    command += ["-f", str(project / "docker-compose.yml")]
    _run(*command, "up", "-d", "--no-build", timeout=300)
    try:
        container = Container(docker, name)
        assert container.inspect("{{.HostConfig.RestartPolicy.Name}}") == "unless-stopped"
        container.wait_healthy()
        _check_served_and_scanned(container, media_dir)
        stop_s = container.stop(*command, "stop")
        assert container.inspect("{{.State.ExitCode}}") == "0", container.logs()[-4000:]
        assert stop_s < grace, f"compose stop took {stop_s:.1f} s"
        print(f"\ndocker compose: stop {stop_s:.1f} s\n{container.shutdown_lines()}")
    finally:
        _run(*command, "down", "--volumes", timeout=300, check=False)
    _check_owned_by_puid(project / "data")
    assert _library_state(media_dir) == library_before, "the library changed"


def test_final_image_has_no_compiler_and_runs_as_puid(docker, image):
    tools = _run(docker, "run", "--rm", "--entrypoint", "sh", image, "-c",
                 "for t in gcc cc g++ make patch; do command -v $t || true; done")  # fmt: skip
    assert tools.stdout.strip() == "", f"build tools in the final image: {tools.stdout.split()}"
    ids = _run(docker, "run", "--rm", "-e", f"PUID={PUID}", "-e", f"PGID={PGID}", image, "id", "-u")
    assert ids.stdout.strip() == str(PUID)
