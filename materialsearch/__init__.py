"""materialsearch: search your own photos and videos by a sentence or an example image."""

import os

__version__ = "0.1.0"

# ONNX Runtime (the ONNX encoder, OCR) sends usage telemetry to Microsoft from Linux too, and flushes it when the
# process exits: where names cannot be resolved (an offline NAS, a container without outside network) the exit then
# waits ~9 s for DNS, past `docker stop`'s 10 s grace. A self-hosted photo search sends nothing: off, before any
# module imports onnxruntime (it reads this once), unless the environment sets it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
