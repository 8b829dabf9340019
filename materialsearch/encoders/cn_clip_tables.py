"""cn_clip's own tables and tokenizer, read without importing cn_clip.

Importing ``cn_clip.clip`` loads torch and torchvision (with PyPI's torch: +650 MB RSS before the first photo),
which an ONNX Runtime encoder never runs once its towers are exported. So what the product needs of cn_clip at
run time comes from cn_clip's files instead: the named models and architectures (the literal ``_MODELS`` and
``_MODEL_INFO`` dicts of cn_clip/clip/utils.py), its architecture configs folder, and its BERT tokenizer
(cn_clip/clip/bert_tokenizer.py imports only the standard library and six), loaded from its file. ``tokenize`` is
cn_clip's ``tokenize`` in numpy: the same ids (a test compares them).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


@functools.cache
def package_dir() -> Path:
    """cn_clip/clip, found without running any of cn_clip's code."""
    spec = importlib.util.find_spec("cn_clip")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("cn_clip is not installed (pip install -r requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations))) / "clip"


@functools.cache
def _literals() -> dict[str, Any]:
    """The module-level literal assignments of cn_clip/clip/utils.py (names, repositories, architectures)."""
    tree = ast.parse((package_dir() / "utils.py").read_text(encoding="utf-8"))
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                found[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue  # not a literal (a computed value): not one of the tables
    return found


def named_models() -> dict[str, tuple[str, str]]:
    """cn_clip's downloadable models: name → (hub repository, file name)."""
    return dict(_literals()["_MODELS"])


def model_infos() -> dict[str, dict[str, Any]]:
    """cn_clip's architectures by model name: ``struct`` (VISION@TEXT) and ``input_resolution``."""
    return dict(_literals()["_MODEL_INFO"])


def hub_organisations() -> tuple[str, str]:
    """The Hugging Face and ModelScope organisations cn_clip downloads from."""
    tables = _literals()
    return tables["_HUGGINGFACE_ORG"], tables["_MODELSCOPE_ORG"]


def config_dir() -> Path:
    """cn_clip's folder of architecture configs (the only place its loader looks)."""
    return package_dir() / "model_configs"


@functools.cache
def _tokenizer():
    spec = importlib.util.spec_from_file_location("_materialsearch_cn_clip_bert", package_dir() / "bert_tokenizer.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load cn_clip's tokenizer from {package_dir()}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.FullTokenizer()  # cn_clip's vocab.txt beside it, as cn_clip builds it


def pad_id() -> int:
    return int(_tokenizer().vocab["[PAD]"])


def tokenize(texts: Sequence[str], context_length: int) -> np.ndarray:
    """cn_clip's ``tokenize``: [CLS] + word pieces (cut to fit) + [SEP], padded with zeros, as int64 rows."""
    tokenizer = _tokenizer()
    cls, sep = tokenizer.vocab["[CLS]"], tokenizer.vocab["[SEP]"]
    rows = np.zeros((len(texts), context_length), np.int64)
    for i, text in enumerate(texts):
        ids = [cls, *tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))[: context_length - 2], sep]
        rows[i, : len(ids)] = ids
    return rows
