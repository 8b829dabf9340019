"""The materialsearch names the benchmarks use, declared in this one place.

When the product moves or renames one of them, ``WHERE`` is the only line in ``bench/`` to change
(``tests/test_bench_package.py`` checks that every name resolves and that no other bench module imports the
product). A name's module is imported on first use, as the benchmarks always did inside their functions: importing
this module costs nothing, and whatever ``Services(...)`` loads (torch, cn_clip ...) stays part of the model load
that the benchmarks time.
"""

from __future__ import annotations

import importlib

# name -> the module it comes from
WHERE = {
    "Settings": "config",
    "configure_pillow": "materialsearch.decode",
    "decode_image": "materialsearch.decode",
    "encode_jpeg": "materialsearch.decode",
    "render": "materialsearch.decode",
    "Machine": "materialsearch.encoders",
    "Tower": "materialsearch.encoders",
    "choose_backend": "materialsearch.encoders",
    "choose_device": "materialsearch.encoders.choose",
    "make_encoder": "materialsearch.encoders",
    "normalise": "materialsearch.encoders.clip",
    "OcrConfig": "materialsearch.ocr",
    "OcrEngine": "materialsearch.ocr",
    "OcrLine": "materialsearch.ocr",
    "decode_for_prepass": "materialsearch.ocr",
    "TextIndex": "materialsearch.textindex",
    "normalize_text": "materialsearch.textnorm",
    "VectorIndex": "materialsearch.index",
    "ARCH_KEY": "materialsearch.encoders.architectures",
    "make_test_model": "materialsearch.encoders.tiny",
    "model_info_for": "materialsearch.encoders.architectures",
    "decode_sizes": "materialsearch.decode",
    "Page": "materialsearch.search",
    "SearchService": "materialsearch.search",
    "Services": "materialsearch.services",
    "Status": "materialsearch.records",
    "Filters": "materialsearch.store",
    "Item": "materialsearch.store",
    "ItemRecord": "materialsearch.records",
    "Store": "materialsearch.store",
    "Vector": "materialsearch.store",
    "Geocoder": "materialsearch.places",
    "create_app": "materialsearch.web",
    "services_of": "materialsearch.web",
    "probe": "materialsearch.video",
    "Sort": "materialsearch.browse",
    "encode_cursor": "materialsearch.browse",
    "timeline_page": "materialsearch.browse",
    "Match": "materialsearch.search",
    "Narrowing": "materialsearch.search",
    "QueryKind": "materialsearch.relevance",
    "sample_frames": "materialsearch.video",
    "label_vectors": "materialsearch.tags",
    "phash_of_file": "materialsearch.duplicates",
    "group_photos": "materialsearch.duplicates",
    "EXACT_SEARCH_MAX": "materialsearch.duplicates",
}

__all__ = sorted(WHERE)


def __getattr__(name: str):
    """``name`` from its product module, imported now (first use) and kept."""
    if name not in WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r} (add it to WHERE)")
    value = getattr(importlib.import_module(WHERE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *WHERE})
