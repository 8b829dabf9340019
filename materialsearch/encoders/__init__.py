"""Turn pixels and sentences into L2-normalised vectors, in Immich ML's shape.

- ``base``: the ``Encoder`` Protocol (decoded pictures and sentences in, vectors out; each encoder prepares its
  own input) and its ``EncoderDescription``, ``Backend``/``Precision``/``Tower`` names, ``BackendChoice``,
  ``ModelError`` and the load-once lifecycle the local backends share;
- ``clip``: cn_clip's preprocessing, tokenizer and normalisation, the same in every local backend;
- ``registry``: the open list of backends by name, which each backend module joins as it is imported;
- ``weights``: finding and reading the weights (cn_clip names or checkpoint files) and building cn_clip's model;
- ``torch_encoder`` / ``onnx_encoder``: one module per local backend;
- ``measure``: ``auto`` on a CPU: every candidate timed on a probe batch, the fastest within the fidelity gate
  chosen, and the decision stored in the data dir;
- ``choose``: the factory, ``make_encoder``, which decides from the settings and the machine's facts (or measures),
  and ``make_query_encoders``, the encoders a query sentence and a query picture run on (``auto`` may pick other
  backends for them, measured at batch 1 within the same fidelity gate);
- ``tiny``: the tiny random checkpoint for tests.

The modules import in that order (none imports a later one), and torch, cn_clip and ONNX Runtime only when used.
"""

from materialsearch.encoders.base import (
    Backend,
    BackendChoice,
    Encoder,
    EncoderDescription,
    Measurement,
    ModelError,
    Precision,
    PreparedPicture,
    Tower,
    Use,
    usable_cores,
)
from materialsearch.encoders.choose import Machine, QueryEncoders, choose_backend, make_encoder, make_query_encoders
from materialsearch.encoders.registry import register_backend, registered_backends, unregister_backend

__all__ = [
    "Backend",
    "BackendChoice",
    "Encoder",
    "EncoderDescription",
    "Machine",
    "Measurement",
    "ModelError",
    "Precision",
    "PreparedPicture",
    "QueryEncoders",
    "Tower",
    "Use",
    "choose_backend",
    "make_encoder",
    "make_query_encoders",
    "register_backend",
    "registered_backends",
    "unregister_backend",
    "usable_cores",
]
