"""The SDK's built-in tap tests, run against the document's sample rows."""

from __future__ import annotations

import typing as t

import pytest
import requests_mock
from singer_sdk.testing import get_tap_test_class

from tap_bayut.tap import TapBayut
from tests.conftest import API_URL, CONFIG, SAMPLES


@pytest.fixture(scope="module", autouse=True)
def served_samples() -> t.Iterator[None]:
    """Serve the samples for the whole module: the suite syncs once, in a class-scoped fixture."""
    with requests_mock.Mocker() as mocker:
        for name, rows in SAMPLES.items():
            mocker.get(f"{API_URL}?type={name}", json=rows)
        yield


TestTapBayut = get_tap_test_class(TapBayut, config=CONFIG, parse_env_config=False)
