"""The validator harness of tests/validator (real store, local chain, real axons), for the kinds' end-to-end test."""

from tests.validator.conftest import harness, scoring, stack  # noqa: F401
