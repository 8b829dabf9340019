"""The ONNX backend: cn_clip's two towers exported to ONNX and run by ONNX Runtime on the CPU.

The towers are exported once per weights file with ``torch.onnx.export`` from the model cn_clip builds (the same
``build_clip`` the torch backend uses), into ``$MS_DATA_DIR/models/onnx/<weights fingerprint>-<tower>-<precision>
.onnx``, written atomically; later starts load those files and never build the torch model.

``int8`` quantizes the weights dynamically, with a recipe per tower (``QUANT_RECIPES``: on CPUs without VNNI,
full-range s8 weights saturate in the u8*s8 kernels and cost ~0.005 of cosine on ViT-B-16). Whether int8 is
good enough depends on the weights, so it is measured on them: right after quantizing, both towers encode a fixed
set of probe pictures and sentences in fp32 and int8, and a tower whose worst cosine falls below
``INT8_MIN_COSINE`` runs fp32 instead. The measurement is kept next to the files and shown in the log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from materialsearch.encoders.base import (
    FIDELITY_MIN_COSINE,
    Backend,
    BackendChoice,
    Loaded,
    LoadedWeights,
    ModelError,
    Precision,
    Tower,
    WeightsSpec,
    usable_cores,
)
from materialsearch.encoders.clip import CONTEXT_LENGTH, clip_preprocess, cosines, normalise, tokenize_trimmed
from materialsearch.encoders.registry import register_backend
from materialsearch.encoders.weights import (
    build_clip,
    identity_for,
    logit_scale_of,
    resolve_weights,
    weights_fingerprint,
    weights_path,
)

if TYPE_CHECKING:
    from PIL import Image

    from config import Settings

log = logging.getLogger(__name__)

OPSET = 17
EXPORT_VERSION = 1  # bump when the export recipe changes, so cached files are remade
QUANT_VERSION = 3  # bump when a quantization recipe changes (int8 files and their fidelity record are remade)
INT8_MIN_COSINE = FIDELITY_MIN_COSINE  # the fidelity bar for a precision change
EXPORTED = (Precision.FP32, Precision.INT8)  # the precisions a tower is cached in
PROBE_SENTENCES = (
    "海边的日落",
    "a dog running on the beach",
    "城市夜景，高楼大厦灯火通明",
    "snow covered mountains under a blue sky",
    "生日蛋糕上插着蜡烛",
    "a cup of coffee on a wooden table",
    "雨中撑伞行走的人们",
    "聊天记录截图",
)


def onnx_dir(settings: Settings) -> str:
    """Where exported towers are cached."""
    return os.path.join(settings.models_dir, "onnx")


def tower_path(folder: str, fingerprint: str, tower: Tower, precision: Precision) -> str:
    """The cache file of one exported tower."""
    suffix = f"{precision}q{QUANT_VERSION}" if precision == Precision.INT8 else precision
    return os.path.join(folder, f"{fingerprint}-v{EXPORT_VERSION}-{tower}-{suffix}.onnx")


def _facts_path(folder: str, fingerprint: str) -> str:
    return os.path.join(folder, f"{fingerprint}-v{EXPORT_VERSION}-facts.json")


def _exported_facts(settings: Settings, folder: str) -> tuple[WeightsSpec, float, str] | None:
    """The weights' spec, logit scale and fingerprint from the facts file written at export, where the weights
    file is here, both fp32 towers are exported and the facts were written for the same MS_MODEL and
    MS_MODEL_ARCH; else None (the checkpoint is read)."""
    path = weights_path(settings)
    try:
        fingerprint = weights_fingerprint(path)
        with open(_facts_path(folder, fingerprint), encoding="utf-8") as handle:
            facts = json.load(handle)
        if (facts["model"], facts["model_arch"]) != (settings.model, settings.model_arch):
            return None
        if not all(os.path.isfile(tower_path(folder, fingerprint, tower, Precision.FP32)) for tower in Tower):
            return None
        spec = WeightsSpec(
            settings.model, os.path.abspath(path), facts["model_info"], int(facts["input_resolution"]), facts["arch"]
        )
        return spec, float(facts["logit_scale"]), fingerprint
    except (OSError, StopIteration, ValueError, KeyError, TypeError):
        return None


def probe_images(resolution: int, count: int = 8, seed: int = 0) -> list[Image.Image]:
    """Deterministic photo-like pictures (smooth colour fields, shapes, grain) for the int8 fidelity probe."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    size = max(resolution, 64)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    pictures = []
    for _ in range(count):
        base = np.stack(
            [np.sin(x * rng.uniform(1, 6) + rng.uniform(0, 6)) + np.cos(y * rng.uniform(1, 6)) for _ in range(3)], -1
        )
        base = (base - base.min()) / (np.ptp(base) + 1e-6) * 255
        image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
        draw = ImageDraw.Draw(image)
        for _ in range(6):
            x0, y0 = rng.integers(0, size, 2)
            x1, y1 = x0 + rng.integers(8, size // 2), y0 + rng.integers(8, size // 2)
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            (draw.ellipse if rng.random() < 0.5 else draw.rectangle)([x0, y0, x1, y1], fill=colour)
        noisy = np.asarray(image, np.float32) + rng.normal(0, 6, (size, size, 3))
        pictures.append(Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB"))
    return pictures


def _atomic_target(path: str) -> str:
    return f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"


def export_towers(model, spec: WeightsSpec, image_path: str, text_path: str) -> None:
    """Export the loaded fp32 model's image and text towers (batch and text length dynamic), atomically."""
    import torch
    from cn_clip.clip import tokenize

    class ImageTower(torch.nn.Module):
        def __init__(self, clip):
            super().__init__()
            self.clip = clip

        def forward(self, image):
            return self.clip.encode_image(image)

    class TextTower(torch.nn.Module):
        def __init__(self, clip):
            super().__init__()
            self.clip = clip

        def forward(self, text):
            return self.clip.encode_text(text)

    resolution = spec.input_resolution
    examples = {
        # A batch of 2: a batch of 1 can get its batch dimension folded into constants.
        image_path: (ImageTower(model), torch.zeros(2, 3, resolution, resolution), Tower.IMAGE),
        text_path: (TextTower(model), tokenize(list(PROBE_SENTENCES[:2]), context_length=CONTEXT_LENGTH), Tower.TEXT),
    }
    for path, (tower, example, name) in examples.items():
        # The wrappers must be in eval mode: export restores the wrapper's own (training) mode afterwards, and
        # that would switch on BERT's dropout in the shared model.
        tower.eval()
        axes = {name: {0: "batch"}, "features": {0: "batch"}}
        if name == Tower.TEXT:
            axes[name][1] = "length"
        tmp = _atomic_target(path)
        try:
            with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    tower,
                    (example,),
                    tmp,
                    opset_version=OPSET,
                    input_names=[name],
                    output_names=["features"],
                    dynamic_axes=axes,
                    dynamo=False,
                )
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp)
    model.eval()


# Dynamic int8 recipes per tower, chosen by measured fidelity on ViT-B-16 + RoBERTa-base (worst cosine to fp32) on
# an AVX2 CPU without VNNI, where full-range s8 weights saturate in the u8*s8 kernels:
#   image: s8 per tensor 0.9946; s8 per channel, reduced range 0.9998 (8.1 img/s); u8 per channel 0.9999 (6.4)
#   text:  s8 per channel, reduced range, MatMul only 0.9990; s8 MatMul only 0.9994; u8 MatMul only 0.9995
# The text tower's embedding tables (Gather) stay fp32: they cost no compute and quantizing them costs fidelity.
QUANT_RECIPES = {
    Tower.IMAGE: {"weight_type": "QInt8", "per_channel": True, "reduce_range": True},
    Tower.TEXT: {"weight_type": "QUInt8", "per_channel": False, "reduce_range": False, "op_types": ["MatMul"]},
}


def quantize_int8(source: str, target: str, tower: Tower) -> None:
    """Dynamic int8 weights with ``tower``'s recipe, atomically."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    recipe = QUANT_RECIPES[tower]
    tmp = _atomic_target(target)
    quiet = logging.getLogger()
    level = quiet.level
    # quantize_dynamic logs a "consider pre-processing" hint on the root logger for every model: not actionable.
    quiet.setLevel(logging.ERROR)
    try:
        quantize_dynamic(
            source,
            tmp,
            weight_type=getattr(QuantType, recipe["weight_type"]),
            per_channel=recipe["per_channel"],
            reduce_range=recipe["reduce_range"],
            op_types_to_quantize=recipe.get("op_types"),
        )
        os.replace(tmp, target)
    finally:
        quiet.setLevel(level)
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)


class OnnxEncoder(LoadedWeights):
    """cn_clip's towers in ONNX Runtime (CPU), fp32 or int8 weights (int8 per tower, where it keeps fidelity)."""

    backend = Backend.ONNX

    def __init__(self, settings: Settings, choice: BackendChoice):
        super().__init__(settings, choice)
        self._sessions: dict[Tower, object] = {}

    # --- loading ----------------------------------------------------------------------------------------------
    def _load(self) -> Loaded:
        """Export (first time) and open both towers. Once exported, the checkpoint is not read again and torch is
        never imported: what the towers need to know of the weights is in a facts file beside them."""
        settings = self._settings
        folder = onnx_dir(settings)
        exported = _exported_facts(settings, folder)
        if exported is not None:
            spec, logit_scale, fingerprint = exported
        else:
            spec, logit_scale, fingerprint = self._export(folder)
        paths = {
            (tower, precision): tower_path(folder, fingerprint, tower, precision)
            for tower in Tower
            for precision in EXPORTED
        }
        chosen = dict.fromkeys(Tower, Precision.FP32)
        fidelity: dict[Tower, float] = {}
        if self.choice.precision == Precision.INT8:
            stem = os.path.join(folder, f"{fingerprint}-v{EXPORT_VERSION}")
            fidelity = self._int8_fidelity(paths, stem, spec.input_resolution)
            for tower in Tower:
                if fidelity[tower] >= INT8_MIN_COSINE:
                    chosen[tower] = Precision.INT8
                else:
                    log.warning(
                        "%s tower: int8 keeps cosine %.5f to fp32 on these weights, below %.3f: running fp32",
                        tower,
                        fidelity[tower],
                        INT8_MIN_COSINE,
                    )
        # Only the sessions that run are opened: each holds its weights (ViT-B-16 fp32: ~750 MB for both); an
        # encoder for one query use opens its tower alone.
        self._sessions = {
            tower: self._session(paths[(tower, chosen[tower])]) for tower in Tower if tower in self.choice.towers
        }
        log.info(
            "model %s: ONNX Runtime, image tower %s, text tower %s (%s)",
            spec.arch,
            chosen[Tower.IMAGE],
            chosen[Tower.TEXT],
            self.choice.reason,
        )
        return Loaded(spec, identity_for(spec, chosen[Tower.IMAGE]), chosen, fidelity, logit_scale)

    def _export(self, folder: str) -> tuple[WeightsSpec, float, str]:
        """Read the checkpoint, export the fp32 towers where they are missing, and write the facts file."""
        settings = self._settings
        spec, checkpoint = resolve_weights(
            settings.model, settings.models_dir, settings.model_arch, settings.offline, settings.model_source
        )
        os.makedirs(folder, exist_ok=True)
        fingerprint = weights_fingerprint(spec.path)
        image_path, text_path = (tower_path(folder, fingerprint, tower, Precision.FP32) for tower in Tower)
        if not (os.path.isfile(image_path) and os.path.isfile(text_path)):
            log.info("exporting %s to ONNX into %s (once per model) ...", spec.arch, folder)
            model = build_clip(spec, checkpoint, "cpu")
            try:
                export_towers(model, spec, image_path, text_path)
            except Exception as exc:  # the exporter raises many types; the user needs the way out
                raise ModelError(
                    f"exporting {spec.arch} to ONNX failed ({type(exc).__name__}: {str(exc)[:300]}); "
                    "set MS_BACKEND=torch to run it in torch instead"
                ) from exc
            del model
        logit_scale = logit_scale_of(checkpoint, spec)
        del checkpoint
        facts = {
            "model": settings.model,
            "model_arch": settings.model_arch,
            "path": spec.path,
            "model_info": spec.model_info,
            "input_resolution": spec.input_resolution,
            "arch": spec.arch,
            "logit_scale": logit_scale,
        }
        target = _facts_path(folder, fingerprint)
        tmp = _atomic_target(target)
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(facts, handle)
        os.replace(tmp, target)
        return spec, logit_scale, fingerprint

    def _session(self, path: str):
        import onnxruntime as ort

        options = ort.SessionOptions()
        threads = self._settings.torch_threads or usable_cores()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Idle model threads must not spin: on a small CPU they would take the cores the decode threads need.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelError(f"cannot open the exported model {path} ({exc}); delete it to export again") from exc

    def _int8_fidelity(self, paths, stem: str, resolution: int) -> dict[Tower, float]:
        """Quantize (first time) and measure each tower's worst cosine int8 vs fp32 on the probe inputs."""
        record_path = f"{stem}-int8q{QUANT_VERSION}-fidelity.json"
        if all(os.path.isfile(paths[(tower, Precision.INT8)]) for tower in Tower):
            # A missing or unreadable record is measured again below.
            with contextlib.suppress(OSError, ValueError, KeyError):
                with open(record_path, encoding="utf-8") as handle:
                    record = json.load(handle)
                return {tower: float(record[tower]) for tower in Tower}
        for tower in Tower:
            if not os.path.isfile(paths[(tower, Precision.INT8)]):
                quantize_int8(paths[(tower, Precision.FP32)], paths[(tower, Precision.INT8)], tower)
        # One input per run, as encode_prepared/encode_texts run int8 (see _run).
        inputs = {
            Tower.IMAGE: [clip_preprocess(image, resolution)[None] for image in probe_images(resolution)],
            Tower.TEXT: [tokenize_trimmed([sentence]) for sentence in PROBE_SENTENCES],
        }
        fidelity = {}
        for tower in Tower:
            pair = [self._session(paths[(tower, precision)]) for precision in EXPORTED]
            reference, quantized = (
                np.concatenate([session.run(None, {tower: row})[0] for row in inputs[tower]]) for session in pair
            )
            fidelity[tower] = round(float(cosines(reference, quantized).min()), 6)
        tmp = _atomic_target(record_path)
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump({**fidelity, "min_cosine_required": INT8_MIN_COSINE}, handle)
        os.replace(tmp, record_path)
        log.info("int8 fidelity on these weights (worst cosine vs fp32): %s", fidelity)
        return fidelity

    # --- encoding ---------------------------------------------------------------------------------------------
    def encode_prepared(self, batch: Sequence[np.ndarray]) -> np.ndarray:
        """Encode a batch of ``prepare``'s arrays."""
        self.load()
        pixels = np.ascontiguousarray(np.stack(batch), dtype=np.float32)
        return normalise(self._run(Tower.IMAGE, pixels))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Tokenize (context 52, padding trimmed) and encode sentences."""
        self.load()
        if self.loaded.tower_precision[Tower.TEXT] == Precision.INT8:
            # Each sentence alone, trimmed to its own length (see _run: rows must not share quantization).
            return normalise(np.concatenate([self._run(Tower.TEXT, tokenize_trimmed([text])) for text in texts]))
        return normalise(self._run(Tower.TEXT, tokenize_trimmed(texts)))

    def _run(self, tower: Tower, batch: np.ndarray) -> np.ndarray:
        session = self._sessions[tower]
        if self.loaded.tower_precision[tower] != Precision.INT8 or len(batch) == 1:
            return session.run(None, {tower: batch})[0]
        # Dynamic int8 quantizes activations with one scale per tensor, i.e. across the whole batch: a picture's
        # vector would depend on the pictures batched with it. One row at a time keeps every vector a function of
        # its own input alone (and measured no slower: 7.8 img/s vs 6.1 batched on ViT-B-16, 2 AVX2 cores).
        return np.concatenate([session.run(None, {tower: batch[i : i + 1]})[0] for i in range(len(batch))])


register_backend(Backend.ONNX, OnnxEncoder)
