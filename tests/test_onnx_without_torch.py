"""ONNX Runtime without torch: once the towers are exported, a start reads neither the checkpoint nor cn_clip's
package (whose import loads torch: ~650 MB RSS with PyPI's torch), tokenizes with cn_clip's own tokenizer file,
and gives the vectors the first start gave."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from materialsearch.encoders import cn_clip_tables

REPO = Path(__file__).resolve().parents[1]
SENTENCES = [
    "海边的日落",
    "a red car in the snow",
    "",
    "  spaced   out  ",
    "Café crème brûlée 🍰 生日蛋糕",
    "写着“母婴”的招牌 IMG_1234.HEIC",
    "一" * 80,  # longer than the context: cut to fit, [SEP] kept
    " ".join(["photosynthesis"] * 40),
]


def test_the_tokenizer_gives_cn_clips_ids():
    from cn_clip.clip import tokenize

    for context in (52, 16):
        ours = cn_clip_tables.tokenize(SENTENCES, context)
        theirs = tokenize(SENTENCES, context_length=context).numpy()
        assert ours.dtype == np.int64 and np.array_equal(ours, theirs), context


def test_cn_clips_tables_are_read_from_its_files():
    from cn_clip.clip import utils

    assert cn_clip_tables.named_models() == utils._MODELS
    assert cn_clip_tables.model_infos() == utils._MODEL_INFO
    assert cn_clip_tables.hub_organisations() == (utils._HUGGINGFACE_ORG, utils._MODELSCOPE_ORG)
    assert cn_clip_tables.config_dir() == Path(utils.__file__).parent / "model_configs"


# Loads the ONNX encoder on the data dir given, encodes two sentences and a picture, and prints the vectors and
# which heavy packages the process imported.
_ENCODE = """
import json, sys
from config import Settings
from materialsearch.encoders import make_encoder
from PIL import Image
data_dir, model, precision = sys.argv[1:4]
encoder = make_encoder(Settings.from_env(environ={}, data_dir=data_dir, model=model, backend="onnx",
                                         precision=precision))
texts = encoder.encode_texts(["海边的日落", "a red car in the snow"])
picture = encoder.encode_images([Image.new("RGB", (300, 200), (200, 60, 30))])
print(json.dumps({"texts": texts.tolist(), "picture": picture.tolist(), "identity": encoder.describe().identity,
                  "torch": "torch" in sys.modules, "cn_clip": "cn_clip" in sys.modules}))
"""


def _encode(data_dir: Path, model: str, precision: str) -> dict:
    run = subprocess.run(
        [sys.executable, "-c", _ENCODE, str(data_dir), model, precision],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_a_start_after_the_export_never_imports_torch(tiny_model, tmp_path):
    for precision in ("fp32", "int8"):
        data_dir = tmp_path / precision
        first = _encode(data_dir, tiny_model, precision)  # exports (torch reads the checkpoint)
        assert first["torch"]
        again = _encode(data_dir, tiny_model, precision)
        assert not again["torch"] and not again["cn_clip"], again
        assert again["identity"] == first["identity"]
        for key in ("texts", "picture"):
            assert np.allclose(np.array(again[key]), np.array(first[key]), atol=1e-6), (precision, key)
