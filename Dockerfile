# makemore live: docker build -t makemore-live . && docker run --name makemore -p 8000:8000 -v makemore:/data makemore-live
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# CPU-only PyTorch from PyTorch's own index (PyPI's default build carries CUDA: gigabytes),
# then the rest, pinned. torch==2.13.0 in requirements.txt is then already satisfied.
COPY requirements.txt .
RUN pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install --no-cache-dir -r requirements.txt

# Optional: workers as Ray actors on a cluster (MAKEMORE_RAY_ADDRESS). docker build --build-arg WITH_RAY=1 .
ARG WITH_RAY=0
RUN if [ "$WITH_RAY" = "1" ]; then pip install --no-cache-dir "ray[default]==2.60.0"; fi

COPY backend/ backend/
COPY frontend/ frontend/
COPY data/names.txt data/names.txt

RUN groupadd --gid 10001 makemore && useradd --uid 10001 --gid 10001 --create-home makemore \
    && mkdir /data && chown 10001:10001 /data
USER 10001:10001

# Runs last in /data (the database, checkpoints, the token): docker run -v makemore:/data ...
# A host directory mounted there instead must be writable by uid 10001 (chown -R 10001 DIR).
ENV MAKEMORE_HOME=/data
VOLUME /data

# Inside the container the server must listen on every interface to be reachable via -p.
# MAKEMORE_IN_CONTAINER: the logged address names the container's port, which -p maps.
ENV MAKEMORE_HOST=0.0.0.0 \
    MAKEMORE_PORT=8000 \
    MAKEMORE_IN_CONTAINER=1
EXPOSE 8000
# /api/health answers within a second of the start (torch loads behind it); its successful
# checks stay out of the access log.
HEALTHCHECK --interval=30s --timeout=5s --start-period=5s --start-interval=1s --retries=3 \
    CMD ["python", "-m", "backend.healthcheck"]

CMD ["python", "-m", "backend"]
