"""Turn pixels and sentences into L2-normalised vectors, in Immich ML's shape.

- ``base``: the ``Encoder`` Protocol, ``Backend``/``Precision``/``Tower`` names, ``BackendChoice``, ``ModelError``
  and the load-once lifecycle the backends share;
- ``clip``: cn_clip's preprocessing, tokenizer and normalisation, the same in every backend;
- ``weights``: finding and reading the weights (cn_clip names or checkpoint files) and building cn_clip's model;
- ``torch_encoder`` / ``onnx_encoder``: one module per backend;
- ``measure``: ``auto`` on a CPU: every candidate timed on a probe batch, the fastest within the fidelity gate
  chosen, and the decision stored in the data dir;
- ``choose``: the factory, ``make_encoder``, which decides from the settings and the machine's facts (or measures);
- ``tiny``: the tiny random checkpoint for tests.

The modules import in that order (none imports a later one), and torch, cn_clip and ONNX Runtime only when used.
"""

from materialsearch.encoders.base import Backend, BackendChoice, Encoder, Measurement, ModelError, Precision, Tower
from materialsearch.encoders.choose import Machine, choose_backend, make_encoder

__all__ = [
    "Backend",
    "BackendChoice",
    "Encoder",
    "Machine",
    "Measurement",
    "ModelError",
    "Precision",
    "Tower",
    "choose_backend",
    "make_encoder",
]
