"""Shared fixtures for the tool tests."""

import sys

import pytest


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny CPU models run ~20× faster single-threaded on a shared 2-core box (no OpenMP
    spin contention); restored afterwards so other test modules are unaffected."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
