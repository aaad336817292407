"""scripts/train_starter.py: the blend stage and the polish's resume checks (the stages that
train are exercised by running the recipe, not here)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import keras
import numpy as np
import pytest

from facedenoise.config import ModelConfig, RunConfig, save_run_config
from facedenoise.models import build_model

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import train_starter  # noqa: E402

SMALL = ModelConfig(arch="resunet", width=4, depth=2)


def _save_run(folder: Path, seed: int, train=None) -> Path:
    keras.utils.set_random_seed(seed)
    model = build_model(SMALL)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.1, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    folder.mkdir(parents=True)
    model.save(folder / "best.keras")
    config = RunConfig(model=SMALL) if train is None else RunConfig(model=SMALL, train=train)
    save_run_config(config, folder / "config.json")
    return folder / "best.keras"


def test_blend_writes_the_weighted_mean_of_two_runs(tmp_path):
    from facedenoise.runs import load_model

    tuned = _save_run(tmp_path / "tuned", seed=1)
    start = _save_run(tmp_path / "start", seed=2)
    run_dir = train_starter.blend(tmp_path / "work", tuned, start, alpha=0.25)
    blended = load_model(run_dir / "best.keras").get_weights()
    expected = [0.25 * a + 0.75 * b for a, b in zip(
        load_model(tuned).get_weights(), load_model(start).get_weights(), strict=True)]
    for got, want in zip(blended, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)  # float32 arithmetic
    assert json.loads((run_dir / "blend.json").read_text())["alpha"] == 0.25
    assert (run_dir / "config.json").read_bytes() == (tuned.parent / "config.json").read_bytes()


def test_blend_refuses_an_alpha_outside_zero_to_one_and_writes_nothing(tmp_path):
    tuned = _save_run(tmp_path / "tuned", seed=1)
    with pytest.raises(SystemExit, match="--alpha must lie in"):
        train_starter.blend(tmp_path / "work", tuned, tuned, alpha=1.5)
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize("change, name", [
    (dict(lr=1e-4), "lr"),
    (dict(loss_after_chroma=True), "loss_after_chroma"),
    (dict(minutes=30), "time_limit_minutes"),
    (dict(width=8), "init_from"),  # the widened copy is another file, so that differs first
    (dict(level_modulation=True), "init_from"),  # so is the copy grown into FiLM
])
def test_a_polish_resumed_with_other_settings_stops_before_training(tmp_path, monkeypatch,
                                                                      change, name):
    # Resuming continues the stored run as it started: a changed setting would be ignored
    # silently without this check.
    work = tmp_path / "work"
    init = _save_run(tmp_path / "init", seed=3)
    started = dict(minutes=60.0, init=init, lr=5e-5, loss_after_chroma=False)
    config = replace(
        train_starter.train_config(epochs=1000, hours=started["minutes"] / 60),
        lr=started["lr"], steps_per_epoch=train_starter.POLISH_STEPS_PER_EPOCH,
        extra_train=str(work / "extra"), init_from=str(init), loss_after_chroma=False)
    run_dir = train_starter.polish_folder(work)
    _save_run(run_dir, seed=4, train=config)
    (run_dir / "last.keras").write_bytes((run_dir / "best.keras").read_bytes())
    monkeypatch.setattr("facedenoise.train.train", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(SystemExit, match=f"started with {name}="):
        train_starter.polish_or_resume(work, **{**started, **change})


def test_a_polish_resumed_with_the_same_settings_resumes(tmp_path, monkeypatch):
    work = tmp_path / "work"
    init = _save_run(tmp_path / "init", seed=3)
    config = replace(
        train_starter.train_config(epochs=1000, hours=1.0), lr=5e-5,
        steps_per_epoch=train_starter.POLISH_STEPS_PER_EPOCH,
        extra_train=str(work / "extra"), init_from=str(init))
    run_dir = train_starter.polish_folder(work)
    _save_run(run_dir, seed=4, train=config)
    (run_dir / "last.keras").write_bytes((run_dir / "best.keras").read_bytes())
    calls = []
    monkeypatch.setattr("facedenoise.train.train", lambda *a, **k: calls.append(k) or run_dir)
    assert train_starter.polish_or_resume(work, 60.0, init=init, lr=5e-5) == run_dir
    assert calls == [dict(resume=run_dir)]
