# Minimal image: the README's install step, then app.py. (Hardening, CPU-only wheels, PUID/PGID and a health
# check come with the deployment work.)
FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt .
RUN python3 -m venv .venv && .venv/bin/pip install --no-cache-dir -r requirements.txt
COPY app.py config.py ./
COPY materialsearch/ materialsearch/
COPY templates/ templates/
COPY static/ static/
ENV MS_HOST=0.0.0.0 MS_PORT=5000 MS_DATA_DIR=/data MS_LIBRARY=/photos
VOLUME /data
EXPOSE 5000
CMD [".venv/bin/python", "app.py"]
