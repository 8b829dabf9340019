"""materialsearch: search your own photos and videos by a sentence or an example image."""

import os

__version__ = "0.1.0"

# ONNX Runtime (the ONNX encoder, OCR) sends usage telemetry to Microsoft from Linux too, and flushes it when the
# process exits: where names cannot be resolved (an offline NAS, a container without outside network) the exit then
# waits ~9 s for DNS, past `docker stop`'s 10 s grace. A self-hosted photo search sends nothing: off, before any
# module imports onnxruntime (it reads this once), unless the environment sets it.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# torch and FAISS run their threads on GNU OpenMP, whose idle threads spin after every parallel region waiting for
# more work. A scan runs the model beside the decode threads on the same few cores, and a model is hundreds of
# parallel regions a batch: the spinning took the CPU the decode threads needed (torch fp32 scan of the bench's
# phone mix on 2 AVX2 cores: 501 → 431 CPU-ms a photo, 3.61 → 4.12 photos/s; a sentence on torch during a torch
# scan waited 0.9–1.8 s for the spinners instead of ~90 ms). Passive threads sleep at once. Set before torch or faiss
# loads libgomp (it reads this once), unless the environment sets it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
