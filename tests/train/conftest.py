"""Shared, module-built fixtures for training tests: a tiny Qwen2.5-VL and a small world dataset."""

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    from spatialrl.models.tiny import build_tiny_model

    path = tmp_path_factory.mktemp("tiny-model") / "model"
    build_tiny_model(path, size="tiny", seed=0, corpus_scenes=20)
    return str(path)


@pytest.fixture(scope="session")
def world_dataset_dir(tmp_path_factory):
    from spatialrl.data.build import BuildConfig, build_dataset

    path = tmp_path_factory.mktemp("world-data") / "data"
    build_dataset(str(path), BuildConfig(scenes=6, seed=0))
    return str(path)
