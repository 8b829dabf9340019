"""``auto`` chooses a backend per use: the scan's pictures (batches), query sentences and query pictures (batch 1),
each timed by measuring (timings passed in, so no test depends on the CPU it runs on) and each query use held to
the same fidelity gate against torch fp32 as a scan backend. The choice is stored with the scan's decision (a
second start measures nothing); explicit settings force every use; stored vectors keep the scan encoder's
identity; and a query backend whose vectors disagree with fp32 (another model's, for real) is refused however
fast it is."""

from __future__ import annotations

import json

import numpy as np
import pytest

from materialsearch.encoders import (
    Backend,
    Precision,
    Tower,
    Use,
    make_encoder,
    make_query_encoders,
    measure,
    registered_backends,
)
from materialsearch.encoders.base import FIDELITY_MIN_COSINE
from materialsearch.encoders.clip import cosines
from materialsearch.encoders.onnx_encoder import PROBE_SENTENCES, OnnxEncoder
from materialsearch.encoders.torch_encoder import TorchEncoder
from tests.test_choose import AVX2, Stopwatch, never

TORCH_FP32, ONNX_INT8, ONNX_FP32, TORCH_BF16 = (
    (Backend.TORCH, Precision.FP32),
    (Backend.ONNX, Precision.INT8),
    (Backend.ONNX, Precision.FP32),
    (Backend.TORCH, Precision.BF16),
)
# Seconds per picture in the scan's batches: torch fp32 wins (bf16 is hopeless: stopped after its warm-up).
SCAN = {TORCH_FP32: 1 / 10, ONNX_INT8: 1 / 8, ONNX_FP32: 1 / 7, TORCH_BF16: 1.0}
# Seconds per sentence / picture at batch 1, as queries run them.
INT8_SENTENCES = {TORCH_FP32: 0.040, ONNX_INT8: 0.010, ONNX_FP32: 0.030, TORCH_BF16: 0.5}
FP32_PICTURES = {TORCH_FP32: 0.100, ONNX_INT8: 0.110, ONNX_FP32: 0.140, TORCH_BF16: 1.0}


@pytest.fixture
def make_settings(settings_sharing_models):
    """conftest's settings, sharing the module's models folder (one ONNX export of the tiny model)."""
    return settings_sharing_models


def stored(settings) -> dict:
    with open(measure.decision_path(settings), encoding="utf-8") as handle:
        return json.load(handle)


def build_for(settings):
    """What ``make_encoder`` builds for a candidate while measuring."""
    return lambda choice: registered_backends()[choice.backend](settings, choice)


def test_a_query_use_gets_its_own_backend_stored_and_reused(make_settings):
    settings = make_settings()
    timer = Stopwatch(SCAN, {Use.SENTENCES: INT8_SENTENCES, Use.QUERY_PICTURES: FP32_PICTURES})
    scan = make_encoder(settings, AVX2, timer=timer)
    choice = scan.choice
    assert (choice.backend, choice.precision) == TORCH_FP32 and isinstance(scan, TorchEncoder)
    # Sentences run on ONNX int8 (4x faster than the scan's torch fp32); pictures stay on the scan's (fastest).
    assert {use: (q.backend, q.precision) for use, q in choice.queries.items()} == {Use.SENTENCES: ONNX_INT8}
    assert "query sentences: onnx int8 10.0 ms at batch 1 against the scan's torch fp32 40.0 ms" in choice.reason
    # Every candidate that was not hopeless was timed at batch 1 for both uses, within the gate.
    timed = {(t.backend, t.precision, t.use) for t in choice.query_timings if t.passed}
    assert timed == {(*key, use) for key in (TORCH_FP32, ONNX_INT8, ONNX_FP32) for use in measure.QUERY_TOWERS}
    assert {c[:2] for c in timer.query_calls} == {TORCH_FP32, ONNX_INT8, ONNX_FP32}
    # One run encodes every probe sentence, or QUERY_PICTURES probe pictures, one at a time.
    counts = {use: count for *_, count, use in timer.query_calls}
    assert counts == {Use.SENTENCES: len(PROBE_SENTENCES), Use.QUERY_PICTURES: measure.QUERY_PICTURES}
    record = stored(settings)
    assert record["queries"] == {
        Use.SENTENCES: {"backend": "onnx", "precision": "int8", "reason": choice.queries[Use.SENTENCES].reason}
    }
    assert len(record["query_timings"]) == 2 * len(measure.CANDIDATES)

    queries = make_query_encoders(settings, scan)
    assert queries.pictures is scan
    sentences = queries.sentences
    assert isinstance(sentences, OnnxEncoder) and set(sentences._sessions) == {Tower.TEXT}  # one tower opened
    text = ["海边的日落", "a dog running on the beach"]
    assert cosines(sentences.encode_texts(text), scan.encode_texts(text)).min() >= FIDELITY_MIN_COSINE

    # A second start: the same per-use decision, nothing measured.
    again = make_encoder(settings, AVX2, timer=never)
    assert again.choice.queries.keys() == {Use.SENTENCES}
    assert again.choice.query_timings == choice.query_timings
    assert isinstance(make_query_encoders(settings, again).sentences, OnnxEncoder)


def test_stored_vectors_keep_the_scan_encoders_identity(make_settings, library):
    from materialsearch.catalog.store import Filters
    from materialsearch.search.service import Page
    from materialsearch.services import Services

    settings = make_settings(library=str(library))
    # Both query uses on ONNX int8, the scan on torch fp32.
    per_use = {Use.SENTENCES: INT8_SENTENCES, Use.QUERY_PICTURES: {**FP32_PICTURES, ONNX_INT8: 0.02}}
    scan = make_encoder(settings, AVX2, timer=Stopwatch(SCAN, per_use))
    services = Services(settings, encoder=scan)
    try:
        queries = services.search.queries
        assert queries.sentences is queries.pictures and isinstance(queries.sentences, OnnxEncoder)
        assert queries.sentences.describe().identity != scan.describe().identity  # int8's: never stored
        stats = services.scans.run()
        assert stats.added > 0 and services.index.identity == scan.describe().identity
        # A photo of the library finds itself first, though its query vector came from the other backend.
        photo = str(library / "jpg_orient1.jpg")
        vector = services.search.image_vector((library / "jpg_orient1.jpg").read_bytes())
        top = services.search.search(vector, Filters(), Page(limit=1)).hits[0]
        assert top.item.path == photo
        assert float(services.store.item_vectors(top.item.id)[0] @ vector) >= FIDELITY_MIN_COSINE
        sentence = services.search.text_vector("a dog running on the beach")
        assert np.array_equal(sentence, queries.sentences.encode_texts(["a dog running on the beach"])[0])
    finally:
        services.close()
    # The next start (nothing measured) finds the index made by the scan's encoder: nothing to re-embed.
    reopened = Services(settings, encoder=make_encoder(settings, AVX2, timer=never))
    try:
        assert reopened.model_change is None and reopened.index.ntotal == stats.added
    finally:
        reopened.close()


def test_a_query_backend_only_a_little_faster_is_not_worth_a_second_tower(make_settings):
    gain = measure.QUERY_SWITCH_GAIN
    just_short = INT8_SENTENCES[TORCH_FP32] / gain * 1.05  # the others, just short of the gain over the scan's
    close = {**INT8_SENTENCES, ONNX_INT8: just_short, ONNX_FP32: just_short}
    scan = make_encoder(make_settings(), AVX2, timer=Stopwatch(SCAN, {Use.SENTENCES: close}))
    assert scan.choice.queries == {}
    queries = make_query_encoders(make_settings(), scan)
    assert queries.sentences is scan and queries.pictures is scan


@pytest.mark.parametrize(
    ("forced", "expected"),
    [
        pytest.param({"backend": "torch"}, TorchEncoder, id="MS_BACKEND=torch"),
        pytest.param({"backend": "onnx"}, OnnxEncoder, id="MS_BACKEND=onnx"),
        pytest.param({"precision": "int8"}, OnnxEncoder, id="MS_PRECISION=int8"),
        pytest.param({"precision": "fp32"}, TorchEncoder, id="MS_PRECISION=fp32"),
    ],
)
def test_a_forced_backend_forces_every_use(make_settings, forced, expected):
    # An auto start first stored a per-use decision in this data dir: forcing ignores it and measures nothing.
    make_encoder(make_settings(), AVX2, timer=Stopwatch(SCAN, {Use.SENTENCES: INT8_SENTENCES}))
    settings = make_settings(**forced)
    scan = make_encoder(settings, AVX2, timer=never)
    assert isinstance(scan, expected) and scan.choice.queries == {} and scan.choice.measurements == ()
    queries = make_query_encoders(settings, scan)
    assert queries.sentences is scan and queries.pictures is scan


def test_the_gate_refuses_a_query_backend_whose_vectors_disagree(make_settings, make_model):
    """ONNX int8 is by far the fastest for both query uses, but what runs as that candidate is another model (seed
    1): its vectors really disagree with torch fp32's, so no use may run on it; with the right model the same
    timings choose it (test_a_query_use_gets_its_own_backend_stored_and_reused)."""
    settings = make_settings()
    other = make_settings(model=make_model(1))
    build = build_for(settings)

    def build_with_the_wrong_model(choice):
        return build_for(other)(choice) if (choice.backend, choice.precision) == ONNX_INT8 else build(choice)

    fastest = {
        Use.SENTENCES: {**INT8_SENTENCES, ONNX_INT8: 0.001},
        Use.QUERY_PICTURES: {**FP32_PICTURES, ONNX_INT8: 0.001},
    }
    timer = Stopwatch(SCAN, fastest)
    choice = measure.measure_and_choose(settings, AVX2, build_with_the_wrong_model, timer=timer)
    assert (choice.backend, choice.precision) == TORCH_FP32
    # Sentences go to the fastest candidate that agrees (onnx fp32, 30 ms against the scan's 40); pictures stay.
    assert {use: (q.backend, q.precision) for use, q in choice.queries.items()} == {Use.SENTENCES: ONNX_FP32}
    refused = [t for t in choice.query_timings if (t.backend, t.precision) == ONNX_INT8]
    assert {t.use for t in refused} == set(measure.QUERY_TOWERS)
    for timing in refused:
        assert not timing.passed and timing.ms is None and timing.cosine < FIDELITY_MIN_COSINE
        assert "miss the fidelity gate" in timing.note
    assert not [c for c in timer.query_calls if c[:2] == ONNX_INT8]  # refused before it was timed

    # A tower that agrees is allowed for its use even when the other tower disagrees: the gate is per tower.
    image_only = dict.fromkeys(Tower, 1.0) | {Tower.TEXT: 0.5}
    encoder = build(measure.candidates(AVX2)[0])
    encoder.load()
    probe = measure.make_probe(encoder.describe().input_size, 2)
    timings = measure.time_queries(encoder, probe, image_only, 0.0, Stopwatch({TORCH_FP32: 0.01}))
    assert {t.use: t.passed for t in timings} == {Use.SENTENCES: False, Use.QUERY_PICTURES: True}


def test_a_query_sentence_opens_no_session_and_reads_no_vocabulary(make_settings, monkeypatch):
    """The work of a query sentence is tokenizing and running the text tower: the sessions are opened at load and
    the tokenizer's vocabulary is read once per process."""
    import onnxruntime

    from materialsearch.encoders import cn_clip_tables

    settings = make_settings(backend="onnx", precision="int8")
    encoder = make_query_encoders(settings, make_encoder(settings)).sentences
    encoder.encode_texts(["海边的日落"])
    opened = []
    real_session = onnxruntime.InferenceSession

    def counting(*args, **kwargs):
        opened.append(args)
        return real_session(*args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", counting)
    vocabulary_reads = cn_clip_tables._tokenizer.cache_info().misses
    for sentence in ("a dog running on the beach", "雨中撑伞行走的人们", "a cup of coffee on a wooden table"):
        assert encoder.encode_texts([sentence]).shape == (1, encoder.describe().dim)
    assert opened == [] and cn_clip_tables._tokenizer.cache_info().misses == vocabulary_reads


def test_an_encoder_for_query_pictures_alone_holds_no_text_tower(make_settings):
    import dataclasses

    settings = make_settings(backend="torch", precision="fp32")
    full = make_encoder(settings)
    full.load()
    pictures_only = TorchEncoder(settings, dataclasses.replace(full.choice, towers=frozenset({Tower.IMAGE})))
    pictures_only.load()
    assert pictures_only._model.bert is None and full._model.bert is not None
    probe = measure.make_probe(full.describe().input_size, 2)
    assert np.array_equal(pictures_only.encode_prepared(probe.pixels), full.encode_prepared(probe.pixels))
    assert pictures_only.describe().identity == full.describe().identity
