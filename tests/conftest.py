"""Shared fixtures: tiny datasets generated once per test session."""

from __future__ import annotations

import pytest

import comm_diag.trifeature_gen as tg

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
