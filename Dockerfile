# materialsearch for a NAS: CPU-only PyTorch by default, a non-root user that follows PUID/PGID, tini as init,
# everything written in /data, the photo library mounted read-only at /photos. README "Docker" has the how-to.
#
#   docker build -t materialsearch .                                  # CPU (default)
#   docker build -t materialsearch --build-arg TORCH_VARIANT=cu128 .  # CUDA 12.8 wheels (run with --gpus all)
#   docker build -t materialsearch --build-arg BAKE_MODEL=ViT-B-16 .  # weights inside the image (offline NAS)
#   docker build -t materialsearch --build-arg TORCH_INDEX_URL= .     # PyTorch's index unreachable: PyPI's torch
#
# Measured (2026-12-06, Intel Xeon with AMX, 2 cores, others' tests beside it): with TORCH_INDEX_URL= the image is
# 7.28 GB (PyPI's torch brings 4.3 GB of NVIDIA libraries and Triton); with a CPU torch wheel it is 2.5 GB (measured
# with torch 2.13.0+cpu standing in: PyTorch's index was unreachable there). Cold build 3–7 min, after a code
# change ~1 s.
#
# No `# syntax=` line: Docker's built-in Dockerfile frontend reads everything used here, so a build needs no image
# but the base (which PYTHON_IMAGE may name from a local registry or `docker import`).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: one virtualenv holding exactly what requirements.txt pins -------------------------------------------
FROM ${PYTHON_IMAGE} AS build
# PyTorch wheel index variant: cpu (default) or a CUDA one such as cu126 / cu128.
ARG TORCH_VARIANT=cpu
# The index itself; empty: no extra index, so torch comes from PyPI, whose Linux torch is the CUDA build (the
# image grows by ~4 GB of NVIDIA libraries but runs the same on a CPU). For a machine that cannot reach PyTorch's
# index (pip would retry it for minutes first), or a mirror of it.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/${TORCH_VARIANT}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# cn-clip pins lmdb==1.3.0, which has no wheel for Python 3.11 and compiles: its setup.py patches the bundled
# LMDB with `patch` and builds against Python's headers. A compiler is needed here, never in the final image.
# (python:*-slim carries the headers in /usr/local/include; a Debian-packaged Python needs python3-dev.)
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev patch \
    && if [ ! -f "$(python3 -c 'import sysconfig; print(sysconfig.get_path("include"))')/Python.h" ]; then \
        apt-get install -y --no-install-recommends python3-dev; \
    fi \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.txt /tmp/requirements.txt
# requirements.txt is the one list of pins. PyTorch's index is an extra index: its local builds (2.14.1+cpu)
# satisfy the ==2.14.1 pins and rank above PyPI's CUDA build of the same version, so torch/torchvision come
# CPU-only (or in the CUDA variant asked for) while every other package comes from PyPI as pinned.
# The optional build secret `pip_cert` is a CA bundle for pip behind a TLS-inspecting proxy
# (`docker build --secret id=pip_cert,src=/etc/ssl/certs/ca-certificates.crt`); it never lands in a layer.
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install ${TORCH_INDEX_URL:+--extra-index-url "${TORCH_INDEX_URL}"} \
        -r /tmp/requirements.txt
# rapidocr-onnxruntime requires opencv-python, whose cv2 links libGL and X11 (absent here): swap it for the headless
# build of the version requirements.txt pins, the same cv2 module without GUI/OpenGL.
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
    && OPENCV_VERSION="$(sed -n 's/^opencv-python==//p' /tmp/requirements.txt)" \
    && /opt/venv/bin/pip uninstall -y opencv-python \
    && /opt/venv/bin/pip install --no-deps "opencv-python-headless==${OPENCV_VERSION}"

# --- weights: optionally bake model weights into the image --------------------------------------------------------
FROM build AS weights
# A cn_clip model name (e.g. ViT-B-16) to download at build time; empty (default): weights come at run time.
ARG BAKE_MODEL=""
WORKDIR /src
COPY config.py ./
COPY materialsearch/ materialsearch/
RUN mkdir -p /opt/models \
    && if [ -n "${BAKE_MODEL}" ]; then \
        MS_DATA_DIR=/tmp/bake MS_MODEL="${BAKE_MODEL}" /opt/venv/bin/python -m materialsearch download-model \
        && mv /tmp/bake/models/* /opt/models/ && rm -rf /tmp/bake; \
    fi

# --- runtime ----------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="materialsearch" \
      org.opencontainers.image.description="Search your own photos by a sentence or an example picture (Chinese-CLIP)"
# tini reaps zombies and passes `docker stop`'s SIGTERM on; setpriv (util-linux, already in the base) drops root.
# tzdata: `TZ=Europe/Berlin` makes MS_SCAN_CRON and MS_SCAN_WINDOW follow local time. (ffmpeg for clips comes
# from the imageio-ffmpeg wheel in requirements.txt, so no system ffmpeg is needed.)
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini tzdata \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /opt/venv /opt/venv
# Baked weights (if any) wait here; the entrypoint copies those missing into /data/models on start.
COPY --from=weights /opt/models /opt/materialsearch/models
WORKDIR /app
COPY app.py config.py ./
COPY materialsearch/ materialsearch/
COPY templates/ templates/
COPY static/ static/
COPY --chmod=0755 docker/entrypoint.sh docker/healthcheck.py docker/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/tmp \
    PUID=1000 \
    PGID=1000 \
    MS_HOST=0.0.0.0 \
    MS_PORT=5000 \
    MS_DATA_DIR=/data \
    MS_LIBRARY=/photos
VOLUME /data
EXPOSE 5000
# Model loading takes a while on a small NAS: failures only count after the start period.
HEALTHCHECK --interval=30s --timeout=10s --start-period=180s --retries=3 CMD ["python", "/app/docker/healthcheck.py"]
ENTRYPOINT ["/usr/bin/tini", "--", "/app/docker/entrypoint.sh"]
CMD ["python", "app.py"]
