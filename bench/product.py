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
    "configure_pillow": "materialsearch.media.decode",
    "decode_image": "materialsearch.media.decode",
    "encode_jpeg": "materialsearch.media.decode",
    "render": "materialsearch.media.decode",
    "Machine": "materialsearch.encoders",
    "Tower": "materialsearch.encoders",
    "choose_backend": "materialsearch.encoders",
    "choose_device": "materialsearch.encoders.choose",
    "make_encoder": "materialsearch.encoders",
    "make_query_encoders": "materialsearch.encoders",
    "normalise": "materialsearch.encoders.clip",
    "OcrConfig": "materialsearch.ocr.engine",
    "OcrEngine": "materialsearch.ocr.engine",
    "OcrLine": "materialsearch.ocr.engine",
    "decode_for_prepass": "materialsearch.ocr.engine",
    "TextIndex": "materialsearch.catalog.fts",
    "normalize_text": "materialsearch.catalog.textnorm",
    "VectorIndex": "materialsearch.catalog.vector_index",
    "VectorSearch": "materialsearch.catalog.vectors",
    "PgVectorIndex": "materialsearch.catalog.pg_vectors",
    "PgVectorSearch": "materialsearch.catalog.pg_vectors",
    "ItemTag": "materialsearch.catalog.schema",
    "ARCH_KEY": "materialsearch.encoders.architectures",
    "make_test_model": "materialsearch.encoders.tiny",
    "model_info_for": "materialsearch.encoders.architectures",
    "decode_sizes": "materialsearch.media.decode",
    "Page": "materialsearch.search.service",
    "SearchService": "materialsearch.search.service",
    "Services": "materialsearch.services",
    "ItemStatus": "materialsearch.catalog.records",
    "Filters": "materialsearch.catalog.store",
    "Item": "materialsearch.catalog.store",
    "ItemRecord": "materialsearch.catalog.records",
    "Store": "materialsearch.catalog.store",
    "Vector": "materialsearch.catalog.store",
    "Geocoder": "materialsearch.organise.places",
    "create_app": "materialsearch.web",
    "services_of": "materialsearch.web",
    "probe": "materialsearch.media.video",
    "Sort": "materialsearch.catalog.timeline",
    "encode_cursor": "materialsearch.catalog.timeline",
    "timeline_page": "materialsearch.catalog.timeline",
    "Match": "materialsearch.search.service",
    "Narrowing": "materialsearch.search.service",
    "QueryKind": "materialsearch.search.relevance",
    "sample_frames": "materialsearch.media.video",
    "label_vectors": "materialsearch.organise.tags",
    "phash_of_file": "materialsearch.organise.duplicates",
    "group_photos": "materialsearch.organise.duplicates",
    "EXACT_SEARCH_MAX": "materialsearch.catalog.similar_pairs",
    "understand": "materialsearch.search.understand",
    "vocabulary": "materialsearch.search.vocabulary",
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
