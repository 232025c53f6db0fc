from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.aws_env import aws_environment, moto_server, reset_moto

# History store fixtures (store_dir, store, any_store) for the engine tests; nearer conftests may override them.
pytest_plugins = ["tests.stores"]


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


@pytest.fixture
def aws(moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A clean moto account, with aws and boto3 pointed at it through the standard variables."""
    reset_moto(moto_url)
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in aws_environment(moto_url).items():
        monkeypatch.setenv(name, value)
    yield moto_url
