"""Encoders on other hosts (issue 20, part 1): ``serve-encoder``'s service and the ``RemoteEncoder`` door over real
HTTP on loopback, with the tiny model: the same vectors as local encoding, failover, refusals (token, identity,
garbage), a scan that waits for an encoder and goes on, and the local fallback."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import threading
import time
import urllib.request

import numpy as np
import pytest
from flask import Flask, jsonify, request
from PIL import Image

from materialsearch.encoders import make_encoder
from materialsearch.encoders.remote import EncoderUnavailable, RemoteEncoder
from materialsearch.encoders.service import create_encoder_app, vectors_to_text
from materialsearch.media.decode import decode_image
from materialsearch.services import Services
from tests.conftest import MEDIA, served, settings_on

PHOTOS = ["jpg_orient6.jpg", "heic_iphone12pro_orient6_irot_gps.heic", "png_palette_trns.png", "jpg_cmyk.jpg"]
LOCAL = {"backend": "torch", "precision": "fp32"}  # the same identity on both sides
TOKEN = "s3cret-encoder-token"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def encoder_service(model: str, data_dir, token: str = TOKEN, port: int | None = None):
    """A real encoder service (waitress, loopback) over ``model``; yields its URL."""
    encoder = make_encoder(settings_on(data_dir, model, **LOCAL))
    encoder.load()
    app = create_encoder_app(encoder, token)
    if port is None:
        with served(app) as server:
            yield f"http://127.0.0.1:{server.effective_port}"
    else:
        with served_on(app, port):
            yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def served_on(app, port: int):
    import waitress
    from waitress import wasyncore

    channels: dict = {}
    server = waitress.create_server(app, map=channels, host="127.0.0.1", port=port, threads=2)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.task_dispatcher.shutdown(timeout=2)
        server.trigger.pull_trigger(lambda: wasyncore.close_all(channels))
        thread.join(timeout=5)


def client(tmp_path, model, urls, weights_here: bool = False, **overrides) -> RemoteEncoder:
    """A client of the services at ``urls``; with ``weights_here`` this machine has ``model``'s weights too (its
    sentences then stay here), else it has none (everything goes to the services)."""
    own = model if weights_here else str(tmp_path / "no-weights-on-this-machine.pt")
    settings = settings_on(tmp_path / "client", own, encoder_urls=tuple(urls), encoder_token=TOKEN, **LOCAL)
    settings = settings.model_copy(update=overrides)
    encoder = make_encoder(settings)
    assert isinstance(encoder, RemoteEncoder)
    return encoder


def upright(name: str) -> Image.Image:
    return decode_image((MEDIA / name).read_bytes(), min_side=224, max_pixels=10**9).image


def test_vectors_through_the_service_match_local_encoding(tiny_model, tmp_path):
    local = make_encoder(settings_on(tmp_path / "local", tiny_model, **LOCAL))
    with encoder_service(tiny_model, tmp_path / "svc") as url:
        remote = client(tmp_path, tiny_model, [url])
        assert not remote.sentences_here  # no weights on this machine: sentences go to the service too
        facts, mine = remote.describe(), local.describe()
        assert (facts.identity, facts.dim, facts.input_size) == (mine.identity, mine.dim, mine.input_size)
        assert facts.backend == "remote" and facts.device == url
        health = json.loads(urllib.request.urlopen(url + "/healthz", timeout=5).read())  # open: no token
        assert health["ok"] is True and health["identity"] == facts.identity  # what Docker's HEALTHCHECK reads
        pictures = [upright(name) for name in PHOTOS]
        prepared = remote.prepare(pictures[0])
        assert isinstance(prepared, bytes) and len(prepared) < 60_000  # a small JPEG, not the original or floats
        cosines = np.sum(remote.encode_images(pictures) * local.encode_images(pictures), axis=1)
        assert cosines.min() >= 0.9999, cosines
        sentences = ["海边的日落", "a red car in the snow"]
        assert np.allclose(remote.encode_texts(sentences), local.encode_texts(sentences), atol=1e-5)


def test_the_next_address_answers_when_the_first_is_down(tiny_model, tmp_path):
    dead = f"http://127.0.0.1:{_free_port()}"
    with encoder_service(tiny_model, tmp_path / "svc") as url:
        remote = client(tmp_path, tiny_model, [dead, url])
        assert remote.describe().device == url
        assert remote.encode_texts(["cat"]).shape == (1, remote.describe().dim)


def test_a_wrong_token_is_refused_with_a_reason(tiny_model, tmp_path):
    refused = pytest.raises(EncoderUnavailable, match="MS_ENCODER_TOKEN")
    with encoder_service(tiny_model, tmp_path / "svc", token="another") as url, refused:
        client(tmp_path, tiny_model, [url]).load()


def test_a_service_with_another_model_is_never_mixed_in(tiny_model, make_model, tmp_path):
    other_model = make_model(1)
    with encoder_service(tiny_model, tmp_path / "a") as first, encoder_service(other_model, tmp_path / "b") as other:
        remote = client(tmp_path, tiny_model, [first, other])
        pinned = remote.describe().identity
        remote.urls = (other,)  # the pinned service goes away; only the other model answers
        threading.Timer(1.5, remote.close).start()
        with pytest.raises(EncoderUnavailable, match="another model"):
            remote.encode_texts(["cat"])
        assert remote.describe().identity == pinned


def test_garbage_answers_are_refused(tiny_model, tmp_path):
    local = make_encoder(settings_on(tmp_path / "local", tiny_model, **LOCAL))
    facts = local.describe()
    liar = Flask("liar")

    @liar.get("/healthz")
    def health():
        return jsonify(
            identity=facts.identity,
            dim=facts.dim,
            input_size=facts.input_size,
            logit_scale=1.0,
            arch="x",
            backend="torch",
            device="cpu",
            precision="fp32",
        )

    answers = iter([np.zeros((1, facts.dim - 1)), np.full((1, facts.dim), np.nan)])

    @liar.post("/v1/encode")
    def encode():
        if not (request.get_json(silent=True) or {}).get("texts"):  # the client's empty probe at load
            return jsonify(identity=facts.identity, dim=facts.dim)
        return jsonify(identity=facts.identity, dim=facts.dim, texts=vectors_to_text(next(answers)))

    with served(liar) as server:
        remote = client(tmp_path, tiny_model, [f"http://127.0.0.1:{server.effective_port}"])
        for expected in ("unreadable answer", "wrong answer"):  # a wrong length, then NaN
            remote._closed.clear()
            threading.Timer(0.5, remote.close).start()
            with pytest.raises(EncoderUnavailable, match=expected):
                remote.encode_texts(["cat"])


def _library(root):
    root.mkdir()
    for name in PHOTOS:
        shutil.copy2(MEDIA / name, root / name)
    return root


def _vectors(services) -> dict[str, np.ndarray]:
    states = services.store.file_states()
    return {path.rsplit("/", 1)[-1]: services.store.item_vectors(state.id)[0] for path, state in states.items()}


def test_a_scan_through_the_service_stores_the_local_vectors(tiny_model, tmp_path):
    library = _library(tmp_path / "library")
    local = Services(settings_on(tmp_path / "local", tiny_model, library=str(library), **LOCAL))
    try:
        local.scans.run()
        expected = _vectors(local)
    finally:
        local.close()
    with encoder_service(tiny_model, tmp_path / "svc") as url:
        settings = settings_on(
            tmp_path / "data", tiny_model, library=str(library), encoder_urls=(url,), encoder_token=TOKEN, **LOCAL
        )
        services = Services(settings)
        try:
            stats = services.scans.run()
            assert stats.errors == 0
            got = _vectors(services)
        finally:
            services.close()
    assert set(got) == set(expected) == set(PHOTOS)
    assert min(float(got[name] @ expected[name]) for name in PHOTOS) >= 0.9999


def test_a_scan_waits_for_an_encoder_that_went_away_and_goes_on(tiny_model, tmp_path):
    library = _library(tmp_path / "library")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    settings = settings_on(
        tmp_path / "data",
        tiny_model,
        library=str(library),
        encoder_urls=(url,),
        encoder_token=TOKEN,
        batch_size=1,
        **LOCAL,
    )
    with encoder_service(tiny_model, tmp_path / "svc", port=port):
        services = Services(settings)  # pins the service's identity
    try:
        assert services.scans.try_start("manual") is None
        deadline = time.monotonic() + 20
        while services.encoder.waiting is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "waiting for an encoder service" in services.encoder.waiting
        assert services.store.counts().errors == 0  # nothing failed because the encoder is away
        with encoder_service(tiny_model, tmp_path / "svc", port=port):
            services.scans.wait(60)
            assert services.encoder.waiting is None
        counts = services.store.counts()
        assert counts.images == len(PHOTOS) and counts.errors == 0
    finally:
        services.close()


def test_the_local_model_stands_in_when_allowed(tiny_model, tmp_path):
    library = _library(tmp_path / "library")
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens
    settings = settings_on(
        tmp_path / "data",
        tiny_model,
        library=str(library),
        encoder_urls=(url,),
        encoder_token=TOKEN,
        encoder_fallback="local",
        **LOCAL,
    )
    services = Services(settings)
    try:
        assert services.scans.run().errors == 0
        assert services.store.counts().images == len(PHOTOS)
    finally:
        services.close()


def test_without_fallback_an_app_with_no_encoder_says_so(tiny_model, tmp_path):
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(EncoderUnavailable, match="serve-encoder"):
        Services(settings_on(tmp_path / "data", tiny_model, encoder_urls=(url,), **LOCAL))


def test_sentences_stay_on_a_machine_with_the_same_weights(tiny_model, tmp_path):
    local = make_encoder(settings_on(tmp_path / "local", tiny_model, **LOCAL))
    sentences = ["海边的日落", "a red car in the snow"]
    with encoder_service(tiny_model, tmp_path / "svc") as url:
        remote = client(tmp_path, tiny_model, [url], weights_here=True)
        assert remote.sentences_here
        assert remote.describe().device == url  # pictures still go to the service
    # The encoder host went to sleep: a search still answers, with the vectors the service would have given.
    answer: list = []
    asking = threading.Thread(target=lambda: answer.append(remote.encode_texts(sentences)), daemon=True)
    asking.start()
    asking.join(timeout=10)  # no waiting for the service, no retries
    remote.close()  # (were it waiting, it would give up now)
    assert answer and np.allclose(answer[0], local.encode_texts(sentences), atol=1e-5)
    assert remote.waiting is None


def test_sentences_go_to_the_service_when_this_machine_has_other_weights(tiny_model, make_model, tmp_path):
    other_model = make_model(1)
    service_side = make_encoder(settings_on(tmp_path / "local", tiny_model, **LOCAL))
    with encoder_service(tiny_model, tmp_path / "svc") as url:
        remote = client(tmp_path, other_model, [url], weights_here=True)
        assert not remote.sentences_here  # its vectors would not match the index
        assert np.allclose(remote.encode_texts(["cat"]), service_side.encode_texts(["cat"]), atol=1e-5)


@contextlib.contextmanager
def encoder_process(model: str, data_dir, port: int):
    """``python -m materialsearch serve-encoder`` in its own process (so it can be stopped with SIGSTOP)."""
    import os
    import signal
    import subprocess
    import sys

    env = {
        **os.environ,
        "MS_MODEL": model,
        "MS_DATA_DIR": str(data_dir),
        "MS_HOST": "127.0.0.1",
        "MS_PORT": str(port),
        "MS_ENCODER_TOKEN": TOKEN,
        "MS_BACKEND": LOCAL["backend"],
        "MS_PRECISION": LOCAL["precision"],
    }
    env.pop("MS_ENCODER_URLS", None)
    process = subprocess.Popen([sys.executable, "-m", "materialsearch", "serve-encoder"], env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "serve-encoder did not start"
                time.sleep(0.2)
        yield process
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.slow
def test_a_hung_service_is_passed_over_and_waited_for_until_it_answers(tiny_model, tmp_path):
    import signal

    hung_port = _free_port()
    hung = f"http://127.0.0.1:{hung_port}"
    picture = [upright(PHOTOS[0])]
    with encoder_process(tiny_model, tmp_path / "hung", hung_port) as process:
        with encoder_service(tiny_model, tmp_path / "svc") as live:
            remote = client(tmp_path, tiny_model, [hung, live], encoder_timeout=2.0)
            alone = client(tmp_path / "alone", tiny_model, [hung], encoder_timeout=2.0)
            alone.load()
            expected = remote.encode_images(picture)  # the first address answers while it runs
            process.send_signal(signal.SIGSTOP)  # hung: it accepts connections, never answers
            started = time.monotonic()
            assert np.allclose(remote.encode_images(picture), expected, atol=1e-5)  # the next address, in time
            assert time.monotonic() - started < 2.0 + 3
        # Only the hung one is left: the caller waits (and says why) until it answers again.
        answer: list = []
        waiter = threading.Thread(target=lambda: answer.append(alone.encode_images(picture)), daemon=True)
        waiter.start()
        deadline = time.monotonic() + 20
        while alone.waiting is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert alone.waiting is not None and "waiting for an encoder service" in alone.waiting
        assert not answer  # nothing made up while it hangs
        process.send_signal(signal.SIGCONT)
        waiter.join(timeout=60)
        assert answer and np.allclose(answer[0], expected, atol=1e-5)
        assert alone.waiting is None
