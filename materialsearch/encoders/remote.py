"""An encoder on other hosts (``MS_ENCODER_URLS``): the ``Encoder`` door over HTTP to ``serve-encoder``.

- ``prepare`` makes what the service needs of a picture: RGB, squashed to the model's square input with cn_clip's
  bicubic resize, as a high-quality JPEG (4:4:4) — ~15 KB instead of the original or ~600 KB of floats; the
  service's own preprocessing then leaves it as it is, so the vectors match local ones (cosine ≥ 0.9999, tested).
- The addresses are tried in order; the one that answered is asked first next time. An answer is checked: the
  identity the client pinned at ``load`` (an encoder with other weights or another precision would put foreign
  vectors in the index: refused, with a one-line reason), the dimension, finite values.
- With several addresses, a batch of pictures is shared among those that answer with the pinned identity, sent to
  them at once, each a part in proportion to its pictures per second so far (per second of the model's time, which
  each answer carries: a GPU host gets nearly all of a batch, a CPU one beside it little or none): two hosts or two
  service processes embed one scan together. A part whose address fails goes the way a whole batch goes (the next
  address, waiting, the fallback), so nothing is lost or sent to two addresses that both answer. A thread asks the
  addresses that do not answer, every ``RECHECK_S``, whether they do again (with the pinned identity) before they
  get parts again. Sentences are few: one address answers them.
- When none answers, ``MS_ENCODER_FALLBACK`` decides: ``wait`` (the caller — a scan — blocks, retrying with a
  growing pause, ``waiting`` says why, until one answers or ``close`` is called) or ``local`` (this machine's model
  embeds meanwhile, only if its identity is the same). A file is never failed because an encoder is away.
- Sentences (queries, tag labels) stay on this machine when it has the same weights: a search then answers while
  the encoder host sleeps, without a round trip; a machine without weights sends them to the service.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from materialsearch.encoders.base import BackendChoice, Encoder, EncoderDescription, ModelError, PreparedPicture
from materialsearch.encoders.clip import normalise
from materialsearch.encoders.service import ENCODE_PATH, HEALTH_PATH, text_to_vectors

log = logging.getLogger(__name__)

REMOTE = "remote"  # the backend name the status shows
JPEG_QUALITY = 95
RETRY_FIRST_S = 1.0  # pause before asking again when no service answers; doubles up to RETRY_MAX_S
RETRY_MAX_S = 30.0
HEALTH_TIMEOUT_S = 5.0
RECHECK_S = 30.0  # how often addresses that do not answer are asked again whether they do (with several addresses)
RATE_WEIGHT = 0.3  # the weight of the last batch in an address's pictures/s (an exponential moving average)


class EncoderUnavailable(ModelError):
    """No encoder service answers (and no local fallback may stand in)."""


class ServiceRefused(Exception):
    """One service's answer cannot be used (wrong token, other identity, garbage): try the next address."""


class RemoteEncoder:
    """``Encoder`` over one or more encoder services, with failover and the fallback policy above."""

    def __init__(
        self, settings, local: Callable[[], Encoder] | None = None, weights_here: Callable[[], bool] = lambda: False
    ):
        if not settings.encoder_urls:
            raise ModelError("MS_ENCODER_URLS is empty: no encoder service to use")
        self.urls: tuple[str, ...] = tuple(settings.encoder_urls)
        self.token = settings.encoder_token
        self.timeout = settings.encoder_timeout
        self.fallback = settings.encoder_fallback
        self._make_local = local
        self._local_fallback: Encoder | None = None  # this machine's model, once it stood in
        self._weights_here = weights_here
        self._sentences: Encoder | None = None  # this machine's model for sentences, where it has the same weights
        self._facts: EncoderDescription | None = None
        self._first = 0  # the address that answered last: asked first
        # The addresses that answered last time they were asked, with the pinned identity → their pictures per second
        # (None until measured): a batch of pictures is shared among them.
        self._answering: dict[str, float | None] = {}
        self._answering_lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self.waiting: str | None = None  # why encoding waits (None while a service answers)

    # --- loading ----------------------------------------------------------------------------------------------
    def load(self) -> None:
        """Pin the identity of the first service that answers its health check (or of the local fallback)."""
        with self._lock:
            if self._facts is not None:
                return
            reasons = []
            for position, url in enumerate(self.urls):
                try:
                    facts = self._probe(url)
                    self._facts = facts
                    self._first = position
                    self._answering[url] = None
                    log.info("encoding on %s (%s)", url, self._facts.identity.split("|")[0])
                    self._sentences = self._local_for_sentences(facts)
                    self._watch()
                    return
                except ServiceRefused as exc:
                    reasons.append(f"{url}: {exc}")
            if self.fallback == "local" and self._make_local is not None:
                self._local_fallback = self._sentences = self._make_local()
                self._facts = self._local_fallback.describe()
                log.warning("no encoder service answers (%s): encoding on this machine", "; ".join(reasons))
                self._watch()
                return
            raise EncoderUnavailable(
                f"no encoder service answers ({'; '.join(reasons)}): start `python -m materialsearch serve-encoder` "
                "there, check MS_ENCODER_URLS and MS_ENCODER_TOKEN, or set MS_ENCODER_FALLBACK=local"
            )

    def _probe(self, url: str) -> EncoderDescription:
        """``url``'s health answer, once an empty batch proved the token (encoding needs it) and the identity the
        service encodes with; ServiceRefused when it does not answer or refuses."""
        facts = _description(self._request(url, HEALTH_PATH, None, HEALTH_TIMEOUT_S), url)
        self._checked(self._request(url, ENCODE_PATH, {}, HEALTH_TIMEOUT_S), None, 0, facts)
        return facts

    def _watch(self) -> None:
        """With several addresses: a thread that asks those that do not answer, now and every ``RECHECK_S``."""
        if len(self.urls) > 1 and self._watcher is None:
            self._watcher = threading.Thread(target=self._recheck, name="encoder services", daemon=True)
            self._watcher.start()

    def _recheck(self) -> None:
        refused: dict[str, str] = {}  # the reason last logged per address (each change is logged once)
        while True:
            for url in self.urls:
                if url in self._answering:
                    continue
                try:
                    identity = self._probe(url).identity
                    if identity != self._facts.identity:
                        raise ServiceRefused(
                            f"it runs another model ({identity.split('|')[0]}, not "
                            f"{self._facts.identity.split('|')[0]}): its vectors would not match the index"
                        )
                except ServiceRefused as exc:
                    if refused.get(url) != str(exc):
                        log.warning("encoder service %s gets no batches: %s", url, exc)
                        refused[url] = str(exc)
                    continue
                refused.pop(url, None)
                with self._answering_lock:
                    self._answering.setdefault(url, None)
                log.info("encoder service %s answers: batches of pictures are shared with it", url)
            if self._closed.wait(RECHECK_S):
                return

    @property
    def answering(self) -> tuple[str, ...]:
        """The addresses that batches of pictures are shared among now (in MS_ENCODER_URLS' order)."""
        with self._answering_lock:
            return tuple(url for url in self.urls if url in self._answering)

    def _local_for_sentences(self, facts: EncoderDescription) -> Encoder | None:
        """This machine's model when its weights are here and its vectors are the services' kind; else None."""
        if self._make_local is None or not self._weights_here():
            return None
        local = self._make_local()
        identity = local.describe().identity
        if identity != facts.identity:
            log.info(
                "sentences go to the encoder service: this machine's model (%s) is not its (%s)",
                identity,
                facts.identity,
            )
            return None
        log.info("sentences are encoded on this machine (the same weights as the encoder service)")
        return local

    @property
    def sentences_here(self) -> bool:
        """Whether sentences are encoded on this machine (it has the services' weights)."""
        self.load()
        return self._sentences is not None

    def describe(self) -> EncoderDescription:
        self.load()
        assert self._facts is not None
        return self._facts

    def close(self) -> None:
        """Stop waiting for a service (a waiting call raises EncoderUnavailable)."""
        self._closed.set()

    # --- encoding ---------------------------------------------------------------------------------------------
    def prepare(self, image: Image.Image) -> PreparedPicture:
        """The picture as the service needs it: RGB, at the model's square input size, as a JPEG."""
        size = self.describe().input_size
        if image.mode != "RGB":
            image = image.convert("RGB")
        resized = image.resize((size, size), Image.Resampling.BICUBIC)
        out = io.BytesIO()
        resized.save(out, "JPEG", quality=JPEG_QUALITY, subsampling=0)
        return out.getvalue()

    def encode_prepared(self, batch: Sequence[PreparedPicture]) -> np.ndarray:
        if not batch:
            return np.empty((0, self.describe().dim), np.float32)
        images = [base64.b64encode(picture).decode("ascii") for picture in batch]
        parts = self._shares(len(images))
        if len(parts) < 2:
            if parts:  # all of it to one of several (much the fastest): asked first
                self._first = self.urls.index(parts[0][0])
            return self._encode({"images": images}, "images", len(batch), lambda local: _local_images(local, batch))
        # Each part to its address at once (the first in this thread); a part whose address failed goes the usual
        # way afterwards, so the others' answers are kept.
        answers: list[np.ndarray | None] = [None] * len(parts)

        def ask(number: int) -> None:
            url, start, stop = parts[number]
            answers[number] = self._try(url, {"images": images[start:stop]}, "images", stop - start)[0]

        helpers = [
            threading.Thread(target=ask, args=(n,), name="encoder request", daemon=True) for n in range(1, len(parts))
        ]
        for helper in helpers:
            helper.start()
        ask(0)
        for helper in helpers:
            helper.join()
        out = []
        for (_url, start, stop), vectors in zip(parts, answers, strict=True):
            if vectors is None:
                part = batch[start:stop]
                vectors = self._encode(
                    {"images": images[start:stop]},
                    "images",
                    len(part),
                    lambda local, part=part: _local_images(local, part),
                )
            out.append(vectors)
        return np.concatenate(out)

    def _shares(self, count: int) -> list[tuple[str, int, int]]:
        """How ``count`` pictures are shared among the answering addresses (``share_out``)."""
        with self._answering_lock:
            rates = {url: self._answering[url] for url in self.urls if url in self._answering}
        return share_out(count, rates)

    def _try(self, url: str, payload: dict, field: str, count: int) -> tuple[np.ndarray | None, str]:
        """Ask ``url`` for ``count`` vectors: (its checked vectors, "") or (None, why not). Whether and how fast it
        answered decides its share of later batches."""
        started = time.monotonic()
        try:
            answer = self._request(url, ENCODE_PATH, payload, self.timeout)
            vectors = self._checked(answer, field, count, self.describe())
            seconds = answer.get("seconds")  # the model's time (the round trip's is about the same for any part)
            if not isinstance(seconds, int | float) or not 0 < seconds < float("inf"):
                seconds = time.monotonic() - started  # an older service: the round trip's
        except ServiceRefused as exc:
            with self._answering_lock:
                if self._answering.pop(url, False) is not False and len(self.urls) > 1:
                    log.warning("encoder service %s stopped answering (%s): its share goes to the others", url, exc)
            return None, str(exc)
        rate = count / max(seconds, 1e-6)
        with self._answering_lock:
            if field == "images":  # sentences are quick: their rate says little of a batch of pictures'
                last = self._answering.get(url)
                self._answering[url] = rate if last is None else (1 - RATE_WEIGHT) * last + RATE_WEIGHT * rate
            else:
                self._answering.setdefault(url, None)
        return vectors, ""

    def encode_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        return self.encode_prepared([self.prepare(image) for image in images])

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.describe().dim), np.float32)
        texts = list(texts)
        if self.sentences_here:
            assert self._sentences is not None
            return self._sentences.encode_texts(texts)
        return self._encode({"texts": texts}, "texts", len(texts), lambda local: local.encode_texts(texts))

    def _encode(self, payload: dict, field: str, count: int, on_local) -> np.ndarray:
        facts = self.describe()
        pause = RETRY_FIRST_S
        while True:
            reasons = []
            ring = [*range(self._first, len(self.urls)), *range(self._first)]
            # Those that answered last time first: one that stopped answering is asked after them, not before.
            order = sorted(ring, key=lambda position: self.urls[position] not in self._answering)
            for position in order:
                url = self.urls[position]
                vectors, reason = self._try(url, payload, field, count)
                if vectors is None:
                    reasons.append(f"{url}: {reason}")
                    continue
                if self.waiting is not None:
                    log.warning("encoder service %s answers again", url)
                self._first, self.waiting = position, None
                return vectors
            local = self._fallback(facts)
            if local is not None:
                return on_local(local)
            self.waiting = f"waiting for an encoder service ({'; '.join(reasons)})"
            log.warning("%s; trying again in %.0f s", self.waiting, pause)
            if self._closed.wait(pause):
                raise EncoderUnavailable(self.waiting)
            pause = min(pause * 2, RETRY_MAX_S)

    def _fallback(self, facts: EncoderDescription) -> Encoder | None:
        """This machine's model, when the policy allows it and its vectors are the same kind."""
        if self.fallback != "local":
            return None
        with self._lock:
            if self._local_fallback is None:
                if self._sentences is not None:  # already here, and already checked to be the same kind
                    self._local_fallback = self._sentences
                    return self._local_fallback
                if self._make_local is None:
                    return None
                local = self._make_local()
                identity = local.describe().identity
                if identity != facts.identity:
                    log.warning(
                        "MS_ENCODER_FALLBACK=local refused: this machine's model (%s) is not the services' (%s)",
                        identity,
                        facts.identity,
                    )
                    self._make_local = None  # ask once
                    return None
                log.warning("no encoder service answers: encoding on this machine until one does")
                self._local_fallback = local
            return self._local_fallback

    def _checked(self, answer: dict, field: str | None, count: int, facts: EncoderDescription) -> np.ndarray:
        if answer.get("identity") != facts.identity:
            raise ServiceRefused(
                f"it runs another model ({str(answer.get('identity')).split('|')[0]}, not "
                f"{facts.identity.split('|')[0]}): its vectors would not match the index"
            )
        if field is None:
            return np.empty((0, facts.dim), np.float32)
        try:
            vectors = text_to_vectors(answer[field], facts.dim)
        except (KeyError, TypeError, ValueError) as exc:
            raise ServiceRefused(f"an unreadable answer ({type(exc).__name__})") from None
        if vectors.shape != (count, facts.dim) or not np.all(np.isfinite(vectors)):
            raise ServiceRefused(f"a wrong answer ({vectors.shape[0]} vectors or non-finite values)")
        return normalise(vectors)

    def _request(self, url: str, path: str, payload: dict | None, timeout: float) -> dict:
        data = None if payload is None else json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(url + path, data=data, headers=headers, method="GET" if data is None else "POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                message = json.loads(exc.read()).get("error") or exc.reason
            except (ValueError, AttributeError):
                message = exc.reason
            raise ServiceRefused(f"HTTP {exc.code}: {message}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:  # refused, unreachable, timed out, not JSON
            raise ServiceRefused(str(getattr(exc, "reason", exc))) from None


def share_out(count: int, rates: dict[str, float | None]) -> list[tuple[str, int, int]]:
    """How ``count`` pictures are shared: (address, start, stop) for each address with a part, in proportion to its
    pictures per second (``rates``, in the addresses' order; one not measured yet counts as the mean of those that
    are); a share that rounds to no picture is none. No parts with fewer than two addresses, or one picture."""
    if len(rates) < 2 or count < 2:
        return []
    measured = [rate for rate in rates.values() if rate]
    guess = sum(measured) / len(measured) if measured else 1.0
    speeds = {url: rate or guess for url, rate in rates.items()}
    total = sum(speeds.values())
    exact = {url: count * speed / total for url, speed in speeds.items()}
    sizes = {url: int(share) for url, share in exact.items()}
    # The pictures left by rounding down go to the largest remainders (the fastest first among equals).
    by_remainder = sorted(exact, key=lambda u: (exact[u] - sizes[u], speeds[u]), reverse=True)
    for url in by_remainder[: count - sum(sizes.values())]:
        sizes[url] += 1
    parts, start = [], 0
    for url, size in sizes.items():
        if size:
            parts.append((url, start, start + size))
            start += size
    return parts


def _local_images(local: Encoder, batch: Sequence[PreparedPicture]) -> np.ndarray:
    return local.encode_images([Image.open(io.BytesIO(picture)).convert("RGB") for picture in batch])


def _description(facts: dict, url: str) -> EncoderDescription:
    try:
        precision = str(facts["precision"])
        return EncoderDescription(
            identity=str(facts["identity"]),
            dim=int(facts["dim"]),
            input_size=int(facts["input_size"]),
            logit_scale=float(facts["logit_scale"]),
            arch=str(facts["arch"]),
            backend=REMOTE,
            device=url,
            precision=precision,
            tower_precision={},
            fidelity={},
            choice=BackendChoice(REMOTE, precision, url, f"MS_ENCODER_URLS ({facts.get('backend')} on {url})"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ServiceRefused(f"an unreadable health answer ({type(exc).__name__}: {exc})") from None
