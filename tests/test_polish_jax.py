"""scripts/polish_jax.py: the pack holds the training tiles, and (where JAX and optax are
installed, as on the lent GPU machines) a short polish writes a run that facedenoise loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from facedenoise.dataset import clean_files
from facedenoise.imageio import read_image, write_image

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))
import polish_jax  # noqa: E402


@pytest.fixture(scope="module")
def packed(tmp_path_factory, prepared_sample, tiny_conditional_run) -> Path:
    work = tmp_path_factory.mktemp("work")
    (work / "natural").symlink_to(prepared_sample)
    (work / "extra").mkdir()
    face = read_image(clean_files(prepared_sample, "train")[0]).pixels
    write_image(work / "extra" / "face_copy_00.png", face)
    os.link(work / "extra" / "face_copy_00.png", work / "extra" / "face_copy_01.png")
    out = work / "pack"
    polish_jax.pack(work, tiny_conditional_run / "best.keras", out, limit=None)
    return out


def test_the_pack_decodes_to_the_training_and_validation_tiles(packed, prepared_sample):
    train = clean_files(prepared_sample, "train")
    decoded, repeats = polish_jax._decoded(packed / "train.npz")
    assert decoded.shape == (len(train) + 1, 128, 128, 3) and decoded.dtype == np.uint8
    assert repeats.tolist() == [1] * len(train) + [2]  # two links to one face: packed once
    for tile, path in zip(decoded, train, strict=False):
        original = read_image(path).pixels
        mse = np.mean((tile.astype(np.float32) / 255 - original) ** 2)
        assert 10 * np.log10(1 / mse) > 30  # JPEG quality 85: 35 dB and up on these faces
    val, _ = polish_jax._decoded(packed / "val.npz")
    originals = [read_image(path).pixels for path in clean_files(prepared_sample, "val")]
    np.testing.assert_array_equal(val, np.rint(np.stack(originals) * 255))  # PNG: lossless
    assert (packed / "init.keras").is_file() and (packed / "config.json").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("film", [False, True])
def test_a_short_polish_writes_a_run_that_facedenoise_loads(packed, tmp_path, film):
    # With --level-modulation the packed weights are grown into FiLM on the device first
    # (the 64 MiB carried hold one set of weights).
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    from facedenoise.inference import Denoiser

    run = tmp_path / "run"
    env = {**os.environ, "KERAS_BACKEND": "jax"}  # this process runs TensorFlow's backend
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "polish_jax.py"), "train", "--pack", str(packed),
         "--out", str(run), "--minutes", "0.05", "--batch", "2", "--eval-seconds", "1",
         "--allow-cpu", *(["--level-modulation"] if film else [])],
        env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert ("largest output difference 0.00e+00" in result.stdout) == film
    history = (run / "history.csv").read_text().splitlines()
    assert history[0].startswith("step,seconds,images,lr,loss,val_psnr_at_0.02")
    assert len(history) >= 3  # the start, at least one evaluation, the end
    denoiser = Denoiser.load(run)
    face = read_image(clean_files(Path(packed).parent / "natural", "val")[0]).pixels
    assert denoiser.denoise(face, noise_level=0.1).shape == face.shape
    from facedenoise.config import load_run_config
    from facedenoise.runs import load_model

    assert load_run_config(run / "config.json").model.level_modulation == film
    assert any(layer.name.endswith("_film") for layer in load_model(run / "best.keras").layers) \
        == film


STEP_CHECK = """
import sys
import jax, keras, numpy as np
sys.path.insert(0, sys.argv[1])
import polish_jax
import facedenoise.models
from pathlib import Path
pack = Path(sys.argv[2])
model = keras.saving.load_model(pack / "init.keras", compile=False)
tiles, repeats = polish_jax._decoded(pack / "train.npz")
picks = np.repeat(np.arange(len(tiles), dtype=np.int32), repeats)
polish = polish_jax.Polish(model, 1e-4, 2, 2.0)
before = [np.asarray(value).copy() for value in polish.trainable]
for seed, rate in enumerate((0.0, 0.0, 1e-4)):
    polish.trainable, polish.non_trainable, polish.state, _ = polish.step(
        polish.trainable, polish.non_trainable, polish.state, tiles, picks,
        jax.random.PRNGKey(seed), rate)
    print(max(float(np.abs(np.asarray(a) - b).max()) for a, b in zip(polish.trainable, before)))
"""


@pytest.fixture(scope="module")
def packed_film(packed, tmp_path_factory) -> Path:
    """`packed` with a model that has the level in every block (FiLM) as its init."""
    import keras

    from facedenoise.config import ModelConfig
    from facedenoise.models import build_model

    out = tmp_path_factory.mktemp("pack_film")
    for name in ("train.npz", "val.npz", "config.json"):
        (out / name).symlink_to(packed / name)
    keras.utils.set_random_seed(0)
    build_model(ModelConfig(arch="resunet", width=4, depth=2, level_modulation=True)).save(
        out / "init.keras")
    return out


@pytest.mark.slow
@pytest.mark.parametrize("pack", ["packed", "packed_film"])
def test_each_step_takes_the_learning_rate_it_is_given(pack, request):
    # The cosine is computed per step from the clock and passed in; a rate baked in at
    # compile time would leave it at the peak for the whole run. The same for the network
    # of the next long run (scripts/train_starter.py polish --level-modulation).
    pytest.importorskip("jax")
    pytest.importorskip("optax")
    result = subprocess.run(
        [sys.executable, "-c", STEP_CHECK, str(SCRIPTS), str(request.getfixturevalue(pack))],
        env={**os.environ, "KERAS_BACKEND": "jax"}, capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    changes = [float(line) for line in result.stdout.split()]
    assert changes[:2] == [0.0, 0.0]
    # Adam moves each weight by at most about the rate (its moments now average three
    # gradients, so the largest move is near it, not at it: 0.94e-4 measured on the plain
    # network, 0.84e-4 on the FiLM one); a rate ten times off would fall far outside.
    assert 0.6e-4 < changes[2] < 1.2e-4
