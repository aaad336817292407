"""Widen a trained `resunet` without changing what it computes, to polish it at the new width
(docs/architecture_experiments.md, "Widening the starter"): every old weight is kept, the
weights from new channels into old ones are zero, and new channels get the builder's own
initialisation (so the residual blocks' second convolutions start at zero). With
`--level-modulation` it also gains the level in every block (ModelConfig.level_modulation,
FiLM): the new layers start at zero modulation, so the output is still unchanged.

    python scripts/widen_model.py src/facedenoise/weights/starter.keras 28 build/wide28.keras
    python scripts/widen_model.py src/facedenoise/weights/starter.keras 28 \
        build/film28/best.keras --level-modulation

Prints the largest output difference between the two models (0 expected) at three levels,
and writes nothing when it exceeds MAX_DIFFERENCE. Writes a config.json (the old run's, at
the new width) beside OUT: keep one widened model per folder.
"""
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from facedenoise.config import load_run_config, save_run_config
from facedenoise.fileio import atomic_path
from facedenoise.models import build_model
from facedenoise.runs import load_model

# Float32 sums in another order stay far below this; mapping the up-convolutions as a plain
# prefix (the sub-pixel order ignored) differs by 0.26-0.36 on random input.
MAX_DIFFERENCE = 1e-5


def new_indices(old: int, new: int, groups: int) -> np.ndarray:
    """Where the old channels sit among the new ones; `groups` > 1 for a convolution whose
    output a depth-to-space splits into `groups` sub-pixel positions (position-major)."""
    if old == new:
        return np.arange(old)
    step_old, step_new = old // groups, new // groups
    return np.concatenate([g * step_new + np.arange(step_old) for g in range(groups)])


def widen(old_model, config, width: int, seed: int = 0, level_modulation: bool = False):
    """A `width`-wide copy of `old_model` (built from `config`) computing the same output;
    with `level_modulation`, FiLM layers are added (they start at zero modulation)."""
    import keras

    keras.utils.set_random_seed(seed)
    wide = build_model(replace(
        config, width=width, level_modulation=config.level_modulation or level_modulation))
    old_names = {layer.name for layer in old_model.layers}
    for layer in wide.layers:
        if not layer.weights or layer.name not in old_names:
            continue  # new FiLM layers keep the builder's initialisation
        old_layer = old_model.get_layer(layer.name)
        old_weights, new_weights = old_layer.get_weights(), layer.get_weights()
        kernel_old, kernel_new = old_weights[0], new_weights[0]
        groups = 4 if layer.name.endswith("_up") else 1
        ins = new_indices(kernel_old.shape[2], kernel_new.shape[2], 1)
        outs = new_indices(kernel_old.shape[3], kernel_new.shape[3], groups)
        # new inputs into old outputs: zero, so the old channels compute what they did
        kernel_new[:, :, :, outs] = 0.0
        kernel_new[:, :, ins[:, None], outs[None, :]] = kernel_old
        result = [kernel_new]
        if len(new_weights) > 1:
            bias = new_weights[1]
            bias[outs] = old_weights[1]
            result.append(bias)
        layer.set_weights(result)
    return wide


def largest_difference(old_model, wide) -> float:
    """The largest output difference of the two models on random images at three levels."""
    rng = np.random.default_rng(1)
    images = rng.random((4, 96, 80, 3), dtype=np.float32)
    differences = []
    for level in (0.0, 0.05, 0.3):
        levels = np.full((4, 1), level, np.float32)
        before = old_model.predict([images, levels], verbose=0)
        differences.append(float(np.abs(before - wide.predict([images, levels], verbose=0)).max()))
    return max(differences)


def checked_widen(old_model, config, width: int, level_modulation: bool = False):
    """`widen`, then the largest output difference of the two models (`largest_difference`);
    SystemExit when it exceeds MAX_DIFFERENCE."""
    wide = widen(old_model, config, width, level_modulation=level_modulation)
    difference = largest_difference(old_model, wide)
    film = " with the level in every block" if level_modulation else ""
    print(f"widened {config.width} -> {width}{film}: parameters {old_model.count_params():,} "
          f"-> {wide.count_params():,}, largest output difference {difference:.2e}")
    if difference > MAX_DIFFERENCE:
        raise SystemExit("the widened model computes something else; nothing written")
    return wide


def widen_file(old_path: Path, width: int, out: Path, level_modulation: bool = False) -> None:
    """Write `old_path` (beside its run's config.json) widened to `width` (and with FiLM when
    `level_modulation`) to `out`, with a config.json beside it; SystemExit, writing nothing,
    when it cannot be done exactly."""
    run_config = load_run_config(old_path.parent / "config.json")
    config = run_config.model
    if config.arch != "resunet" or not config.noise_input:
        # other blocks (LayerNorm, depthwise, transposed kernels) need other index maps
        raise SystemExit(f"only a noise-conditional resunet can be widened, not {config.arch}")
    print(f"{old_path}:")
    wide = checked_widen(load_model(old_path), config, width, level_modulation)
    with atomic_path(out) as temp_path:
        wide.save(temp_path)
    wide_config = replace(run_config, model=replace(
        config, width=width, level_modulation=config.level_modulation or level_modulation))
    save_run_config(wide_config, out.parent / "config.json")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    film = "--level-modulation" in arguments
    arguments = [argument for argument in arguments if argument != "--level-modulation"]
    if len(arguments) != 3:
        raise SystemExit(__doc__)
    widen_file(Path(arguments[0]), int(arguments[1]), Path(arguments[2]), film)
