"""``auto`` on a CPU chooses by measuring: the fastest candidate within the fidelity gate wins (timings stubbed, so
no test depends on the CPU it runs on), the decision is stored in the data dir and reused while its fingerprint
holds, re-measured when the CPU, the libraries or the weights change or the file is unreadable; and one run that
really measures with the tiny model."""

from __future__ import annotations

import dataclasses
import json
import logging
import math

import pytest

from materialsearch.encoders import Backend, Machine, ModelError, Precision, Use, base, make_encoder, measure
from materialsearch.encoders.clip import cosines

AVX2 = Machine(frozenset({"avx", "avx2", "fma"}), cuda=False, onnx_runtime=True, cpu_model="AMD EPYC")
NO_ONNX = dataclasses.replace(AVX2, onnx_runtime=False)
ALL = [(Backend.TORCH, Precision.FP32), (Backend.ONNX, Precision.INT8), (Backend.ONNX, Precision.FP32)]
ALL.append((Backend.TORCH, Precision.BF16))


class Stopwatch:
    """A timer whose seconds per picture are given per candidate (it runs the tiny model, and counts its calls);
    ``per_use`` gives other seconds per picture or sentence for a query use."""

    def __init__(self, per_picture: dict[tuple[str, str], float], per_use: dict | None = None):
        self.per_picture = per_picture
        self.per_use = per_use or {}
        self.calls: list[tuple[str, str, int]] = []  # the scan's runs
        self.query_calls: list[tuple[str, str, int, Use]] = []

    def __call__(self, choice, count, run, use=Use.SCAN) -> float:
        key = (choice.backend, choice.precision)
        if use == Use.SCAN:
            self.calls.append((*key, count))
        else:
            self.query_calls.append((*key, count, use))
        run()  # the tiny model: its vectors are what the fidelity gate checks
        return self.per_use.get(use, self.per_picture)[key] * count


@pytest.fixture
def make_settings(settings_sharing_models):
    """conftest's settings, sharing the module's models folder (one ONNX export of the tiny model)."""
    return settings_sharing_models


def stored(settings) -> dict:
    """The decision file's content."""
    with open(measure.decision_path(settings), encoding="utf-8") as handle:
        return json.load(handle)


def never(*_args):
    raise AssertionError("measured, but a stored decision or an explicit setting should have decided")


def ran(encoder) -> tuple[str, str]:
    """The backend and (image tower) precision that run ``encoder``, as it describes itself (loading it)."""
    model = encoder.describe()
    return model.backend, model.precision


# The kinds of CPU the issue names, as measured there (seconds per ViT-B-16 picture).
XEON_AVX512_BF16_NO_AMX = {ALL[0]: 1 / 6.5, ALL[1]: 1 / 14.0, ALL[2]: 1 / 7.1, ALL[3]: 1 / 4.1}
AMX_CPU = {ALL[0]: 1 / 6.5, ALL[1]: 1 / 14.0, ALL[2]: 1 / 7.1, ALL[3]: 1 / 25.0}


@pytest.mark.parametrize(
    ("timings", "expected"),
    [
        pytest.param(XEON_AVX512_BF16_NO_AMX, ALL[1], id="bf16-without-amx-is-not-chosen"),
        pytest.param(AMX_CPU, ALL[3], id="amx-bf16"),
        pytest.param({**XEON_AVX512_BF16_NO_AMX, ALL[1]: 1.0}, ALL[2], id="int8-slow-here"),
    ],
)
def test_the_fastest_candidate_wins(make_settings, timings, expected):
    timer = Stopwatch(timings)
    encoder = make_encoder(make_settings(), AVX2, timer=timer)
    assert ran(encoder) == expected == (encoder.choice.backend, encoder.choice.precision)
    assert [(m.backend, m.precision) for m in encoder.choice.measurements] == ALL
    winner = next(m for m in encoder.choice.measurements if (m.backend, m.precision) == expected)
    assert winner.passed and "measured fastest" in encoder.choice.reason and encoder.choice.measure_cost_s >= 0
    for m in encoder.choice.measurements:
        assert m.images_per_s <= winner.images_per_s and m.load_s >= 0
        if m.passed:  # timed until the runs add up to the budget, at most MAX_RUNS
            batch_s = timings[(m.backend, m.precision)] * measure.MAX_PROBE_BATCH
            assert m.runs == min(measure.MAX_RUNS, math.ceil(measure.MEASURE_SECONDS / batch_s))
            assert m.min_cosine >= base.FIDELITY_MIN_COSINE


def test_a_fast_candidate_that_misses_the_fidelity_gate_loses(make_settings, monkeypatch):
    # Real tiny-model vectors: bf16 and int8 keep cosine ~0.9998-0.99995, fp32 paths ~1.0; a gate above the
    # former and below the latter turns the fastest down.
    monkeypatch.setattr(base, "FIDELITY_MIN_COSINE", 0.999999)
    timings = {**AMX_CPU, ALL[1]: 1 / 50}  # int8 then bf16 fastest, torch fp32 slowest
    encoder = make_encoder(make_settings(), AVX2, timer=Stopwatch(timings))
    assert ran(encoder) == ALL[2]
    by_path = {(m.backend, m.precision): m for m in encoder.choice.measurements}
    for path in ALL[1], ALL[3]:
        assert not by_path[path].passed and by_path[path].runs == 1 and "fidelity gate" in by_path[path].note


def test_a_hopeless_candidate_stops_after_its_warm_up(make_settings):
    timings = {ALL[0]: 0.1, ALL[1]: 0.05, ALL[2]: 0.1, ALL[3]: 1.0}  # bf16 emulated: 20x slower than int8
    timer = Stopwatch(timings)
    encoder = make_encoder(make_settings(), AVX2, timer=timer)
    bf16 = encoder.choice.measurements[-1]
    assert bf16.runs == 0 and bf16.min_cosine is None and "warm-up" in bf16.note and not bf16.passed
    assert [c for c in timer.calls if c[:2] == ALL[3]] == [(*ALL[3], 1), (*ALL[3], 1)]  # two one-picture runs
    assert ran(encoder) == ALL[1]


def test_without_onnx_runtime_only_torch_is_measured(make_settings):
    encoder = make_encoder(make_settings(), NO_ONNX, timer=Stopwatch(AMX_CPU))
    assert [(m.backend, m.precision) for m in encoder.choice.measurements] == [ALL[0], ALL[3]]
    assert ran(encoder) == ALL[3]


def test_a_candidate_that_fails_is_recorded_and_the_others_compete(make_settings, monkeypatch, caplog):
    from materialsearch.encoders.onnx_encoder import OnnxEncoder

    def broken(_self):
        raise ModelError("exporting to ONNX failed (a test)")

    monkeypatch.setattr(OnnxEncoder, "_load", broken)
    with caplog.at_level(logging.WARNING, logger="materialsearch.encoders.measure"):
        encoder = make_encoder(make_settings(), AVX2, timer=Stopwatch(XEON_AVX512_BF16_NO_AMX))
    assert ran(encoder) == ALL[0]  # int8 would win, but cannot run; bf16 is slower
    onnx = [m for m in encoder.choice.measurements if m.backend == Backend.ONNX]
    assert len(onnx) == 2 and all(not m.passed and "a test" in m.note for m in onnx)
    assert "a test" in caplog.text


def test_the_decision_is_stored_and_reused(make_settings):
    settings = make_settings()
    first = make_encoder(settings, AVX2, timer=Stopwatch(XEON_AVX512_BF16_NO_AMX)).choice
    record = stored(settings)
    assert record["chosen"] == {"backend": "onnx", "precision": "int8"} and len(record["measurements"]) == 4
    assert record["fingerprint"]["cpu"] == "AMD EPYC" and record["fingerprint"]["weights"]
    again = make_encoder(settings, AVX2, timer=never)
    assert ran(again) == (first.backend, first.precision)
    assert again.choice.measurements == first.measurements
    assert "stored in" in again.choice.reason and again.choice.measure_cost_s == first.measure_cost_s
    # the stored choice builds a working encoder
    assert again.encode_texts(["猫"]).shape == (1, again.describe().dim)


def test_explicit_settings_are_not_measured(make_settings):
    settings = make_settings(backend="torch", precision="fp32")
    encoder = make_encoder(settings, AVX2, timer=never)
    assert ran(encoder) == ALL[0] and encoder.choice.measurements == ()
    assert encoder.choice.measure_cost_s is None


@pytest.mark.parametrize("change", ["cpu", "libraries", "weights", "threads"])
def test_a_changed_fingerprint_measures_again(make_settings, make_model, monkeypatch, change):
    settings, machine = make_settings(), AVX2
    make_encoder(settings, machine, timer=Stopwatch(XEON_AVX512_BF16_NO_AMX))
    if change == "cpu":
        machine = dataclasses.replace(AVX2, cpu_model="Intel Xeon Platinum")
    elif change == "libraries":
        monkeypatch.setattr(measure, "library_versions", lambda: {"onnxruntime": "99.0"})
    elif change == "weights":
        settings = make_settings(model=make_model(1))
    else:
        settings = make_settings(torch_threads=1)
    timer = Stopwatch(AMX_CPU)
    encoder = make_encoder(settings, machine, timer=timer)
    assert timer.calls and ran(encoder) == ALL[3]
    assert stored(settings)["chosen"]["precision"] == "bf16"


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"", b"[]", json.dumps({"fingerprint": {}}).encode(), b"\xff\xfe"],
    ids=["truncated", "empty", "a-list", "missing-keys", "not-utf8"],
)
def test_a_corrupt_decision_file_is_measured_again(make_settings, caplog, content):
    settings = make_settings()
    make_encoder(settings, AVX2, timer=Stopwatch(XEON_AVX512_BF16_NO_AMX))
    with open(measure.decision_path(settings), "wb") as handle:
        handle.write(content)
    timer = Stopwatch(AMX_CPU)
    with caplog.at_level(logging.INFO, logger="materialsearch.encoders.measure"):
        encoder = make_encoder(settings, AVX2, timer=timer)
    assert timer.calls and encoder.describe().precision == Precision.BF16
    assert "measuring again" in caplog.text
    reused = make_encoder(settings, AVX2, timer=never)  # the file was rewritten whole
    assert reused.describe().precision == Precision.BF16


def test_a_changed_stored_entry_with_a_bad_value_is_measured_again(make_settings, caplog):
    settings = make_settings()
    make_encoder(settings, AVX2, timer=Stopwatch(XEON_AVX512_BF16_NO_AMX))
    path = measure.decision_path(settings)
    record = stored(settings)
    record["chosen"]["backend"] = "tensorrt"
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(record, handle)
    with caplog.at_level(logging.WARNING, logger="materialsearch.encoders.measure"):
        assert make_encoder(settings, AVX2, timer=Stopwatch(AMX_CPU)).describe().precision == Precision.BF16
    assert "unreadable" in caplog.text


def test_really_measuring_picks_a_path_within_the_gate(make_settings):
    """The product's own timer with a tiny budget: whichever candidate wins on this CPU, it is one that was timed
    and passed, and its vectors are within the gate of torch fp32's."""
    settings = make_settings()
    chosen = measure.measure_and_choose(settings, AVX2, lambda c: make_encoder_for(settings, c), seconds=0.01)
    assert [(m.backend, m.precision) for m in chosen.measurements] == ALL
    winner = next(m for m in chosen.measurements if (m.backend, m.precision) == (chosen.backend, chosen.precision))
    assert (
        winner.passed
        and winner.runs >= 1
        and winner.images_per_s == max(m.images_per_s for m in chosen.measurements if m.passed)
    )
    assert chosen.measurements[0].min_cosine == 1.0  # torch fp32 is the reference
    fp32 = make_encoder(make_settings(backend="torch", precision="fp32"))
    ours = make_encoder(settings, AVX2, timer=never)  # stored
    probe = measure.make_probe(fp32.describe().input_size, 4)
    assert cosines(ours.encode_prepared(probe.pixels), fp32.encode_prepared(probe.pixels)).min() >= 0.999


def make_encoder_for(settings, choice):
    from materialsearch.encoders import registered_backends

    return registered_backends()[choice.backend](settings, choice)


def test_the_status_says_what_was_chosen_and_why(make_app):
    app = make_app()
    model = app.test_client().get("/api/status").get_json()["model"]
    choice = model["choice"]
    assert choice["reason"] and choice["measurements"], choice  # the tests' settings leave everything auto
    timed = [m for m in choice["measurements"] if m["backend"] == model["backend"]]
    assert any(m["precision"] == model["precision"] and m["runs"] >= 1 for m in timed)
    assert choice["measure_cost_s"] >= 0


@pytest.mark.parametrize(
    ("catalog", "int8_speed", "expected"),
    [
        pytest.param("fp32", 1 / 30.0, ALL[3], id="full-precision-catalog-keeps-bf16-when-int8-is-a-little-faster"),
        pytest.param("fp32", 1 / 40.0, ALL[1], id="full-precision-catalog-moves-when-int8-is-much-faster"),
        pytest.param("int8", 1 / 20.0, ALL[1], id="int8-catalog-keeps-int8-when-bf16-is-a-little-faster"),
        pytest.param("other-weights", 1 / 30.0, ALL[1], id="another-models-catalog-changes-nothing"),
        pytest.param(None, 1 / 30.0, ALL[1], id="an-empty-catalog-takes-the-fastest"),
    ],
)
def test_a_measurement_keeps_the_kind_of_vectors_the_catalog_holds(make_settings, catalog, int8_speed, expected):
    """Measured again (a library upgraded, another batch size), a close call must not flip the catalog between int8
    and full-precision vectors — each carries its own identity, so a flip re-embeds the library — unless the other
    kind is SWITCH_FOR times faster."""
    settings = make_settings()
    # The identities these weights' vectors carry at each kind of precision, as the catalog stores them.
    identity = {
        kind: make_encoder(settings.model_copy(update={"backend": backend, "precision": precision})).describe().identity
        for kind, (backend, precision) in (("fp32", ALL[0]), ("int8", ALL[1]))
    }
    identity["other-weights"] = identity["fp32"].replace("|", "|x", 3)
    timings = {**AMX_CPU, ALL[1]: int8_speed}  # bf16 25 img/s; int8 20 or 30 (close calls) or 40
    encoder = make_encoder(settings, AVX2, timer=Stopwatch(timings), catalog_identity=identity.get(catalog))
    assert ran(encoder) == expected
    kept = expected != max(timings, key=lambda path: 1 / timings[path])
    assert ("kept for the catalog's vectors" in encoder.choice.reason) == kept, encoder.choice.reason
    decision = json.dumps(stored(settings))  # stored: the next start runs the same
    assert f'"backend": "{expected[0]}", "precision": "{expected[1]}"' in decision, decision[:300]
