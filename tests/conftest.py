"""Shared fixtures: tiny datasets generated once per test session."""

from __future__ import annotations

import os

import pytest

import comm_diag.trifeature_gen as tg

# Under pytest-xdist (-n K) the cores are shared between the K workers: each trains with its
# share (comm.runtime.set_threads honours COMM_DIAG_THREADS), as a sweep's worker processes do.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    from comm_diag.comm.runtime import usable_cores

    os.environ.setdefault("COMM_DIAG_THREADS",
                          str(max(1, usable_cores() // int(os.environ["PYTEST_XDIST_WORKER_COUNT"]))))

TINY = dict(size=32, train_pairs=256, probe_pairs=256, test_pairs=128)


@pytest.fixture(scope="session")
def tiny_spec() -> tg.DatasetSpec:
    return tg.DatasetSpec(**TINY)


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, tiny_spec) -> tg.Dataset:
    out = tmp_path_factory.mktemp("data") / "tiny"
    tg.generate(tiny_spec, out)
    return tg.load(out)


@pytest.fixture(scope="session")
def tiny_synergy_dataset(tmp_path_factory) -> tg.Dataset:
    out = tmp_path_factory.mktemp("data") / "tiny-synergy"
    tg.generate(tg.DatasetSpec(**TINY, synergy=True), out)
    return tg.load(out)


@pytest.fixture(scope="session")
def world(tmp_path_factory, tiny_dataset) -> dict:
    """The artefacts the hostile-input tables point at (tests/hostile_world.py)."""
    from hostile_world import build_world

    return build_world(tmp_path_factory.mktemp("world"), tiny_dataset)
