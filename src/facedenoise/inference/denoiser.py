"""The Denoiser: a loaded model plus its settings, denoising arrays of any size.

`denoise(array, noise_level)` takes uint8, uint16 or float [0, 1] arrays (grey, RGB or RGBA)
of any size and returns the same layout and type. The model runs through ONNX Runtime for
`.onnx` files and the packaged starter (no TensorFlow), through Keras otherwise.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

from facedenoise.config import AUTO, DEFAULT_TILE_OVERLAP, RUNS_DIR, DenoiseConfig
from facedenoise.errors import FaceDenoiseError
from facedenoise.imageio import array_from_image, check_max_pixels, image_from_array
from facedenoise.inference.chroma import smooth_chroma_batch
from facedenoise.inference.ensemble import check_ensemble, self_ensemble
from facedenoise.inference.levels import (
    NoiseLevel,
    add_top_up,
    auto_level,
    check_noise_level,
    is_grey,
    noise_already_there,
    top_up_std,
)
from facedenoise.inference.runtimes import KerasRuntime, OnnxRuntime
from facedenoise.inference.tiling import chunks, denoise_tiled_rows, pad_edges

# Images above this many pixels are estimated from a few crops, not converted whole.
_ESTIMATE_PIXELS = 4_000_000
_ESTIMATE_CROP = 1024


def check_config(config: DenoiseConfig) -> None:
    """Raise FaceDenoiseError for tile, batch, size or noise-level settings that cannot work."""
    if config.tile < 1 or config.batch_size < 1:
        raise FaceDenoiseError("--tile and --batch-size must be at least 1.")
    if not 0 <= config.overlap < config.tile:
        raise FaceDenoiseError(
            f"--tile-overlap must lie in [0, {config.tile}) for --tile {config.tile}; "
            f"the default is {DEFAULT_TILE_OVERLAP} pixels, at most a quarter of the tile."
        )
    check_max_pixels(config.max_pixels)
    check_noise_level(config.noise_level)
    check_ensemble(config.ensemble)


class Denoiser:
    """A facedenoise model ready to denoise arrays of any size.

    `model`: a Keras model mapping float [0, 1] RGB (N, H, W, 3) (and, for a noise-conditional
    model, levels (N, 1)) to RGB (as built by `facedenoise.models`), or an `OnnxRuntime`.
    `config`: tiling, batching, the default noise level, the ensemble and the chroma stage.
    `source`: where it was loaded from, for messages. `model_seconds` adds up the time spent
    in model calls (with an ensemble, all N calls of a batch and their averaging; not the
    chroma stage).
    """

    def __init__(self, model, config: DenoiseConfig | None = None, source: Path | None = None,
                 highest_level: float | None = None):
        self.config = config or DenoiseConfig()
        check_config(self.config)
        self.model = model
        self.runtime = model if isinstance(model, OnnxRuntime) else KerasRuntime(model)
        self.source = source
        self.multiple = self.runtime.multiple
        self.takes_noise_level = self.runtime.takes_noise_level
        self.model_seconds = 0.0
        # The top of the levels the model was trained on: higher levels run at it.
        self.highest_level = highest_level
        self.check_level(self.config.noise_level)

    @classmethod
    def load(
        cls,
        model: str | Path | None = None,
        runs_dir: str | Path = RUNS_DIR,
        config: DenoiseConfig | None = None,
        prefer: str | None = None,
    ) -> Denoiser:
        """Load a model by run folder, .keras or .onnx file, 'latest', 'starter' or None.

        None takes the default model (`facedenoise.runs.default_model`: the newest run in
        `runs_dir`, else the packaged starter). `.onnx` files and the packaged starter run
        through ONNX Runtime without importing TensorFlow. `prefer` is ignored (kept for
        callers written before one default rule existed). Raises FaceDenoiseError when
        nothing usable is found.
        """
        from facedenoise.runs import fast_model_file, load_model, resolve_model, stored_run_config

        config = config or DenoiseConfig()
        check_config(config)
        path = fast_model_file(resolve_model(None if model is None else str(model), runs_dir))
        loaded = OnnxRuntime(path) if path.suffix == ".onnx" else load_model(path)
        try:
            stored = stored_run_config(path)
        except FaceDenoiseError:  # a config.json that is not a run's: no range known
            stored = None
        trained = None if stored is None else stored.train.noise_range
        # Else an exported .onnx file carries it in its metadata (facedenoise export).
        highest = getattr(loaded, "highest_level", None) if trained is None else trained[1]
        return cls(loaded, config=config, source=path, highest_level=highest)

    # --- noise levels ---

    def check_level(self, noise_level: NoiseLevel) -> float | str:
        """`noise_level` checked (AUTO or a float in [0, 1]); a number for a model without a
        noise input raises FaceDenoiseError."""
        level = check_noise_level(noise_level)
        if level != AUTO and not self.takes_noise_level:
            raise FaceDenoiseError(
                f"The model {self.source or ''} has no noise-level input, so the noise level "
                f"cannot be set to {level:g}; use '{AUTO}' (it simply runs the model) or a "
                "noise-conditional model."
            )
        return level

    def noise_level_for(self, pixels: np.ndarray, noise_level: NoiseLevel = None) -> float | None:
        """The level one image will use (see `level_and_top_up`; kept for callers of 0.2)."""
        return self.level_and_top_up(pixels, noise_level)[0]

    def level_and_top_up(
        self, pixels: np.ndarray, noise_level: NoiseLevel = None
    ) -> tuple[float | None, float]:
        """(level, top-up) for one image (float32 HxWx3 [0, 1] `pixels`).

        level: `noise_level`, else the config's; AUTO is estimated from `pixels`
        (`levels.auto_level`); at most the highest level the model was trained on
        (`level_for_model`); None for a model without a noise input. top-up: the std of
        the noise added to the image before the model sees it when a level is told well
        above the image's own noise (`levels.top_up_std`; 0 for AUTO).
        """
        requested = self.config.noise_level if noise_level is None else noise_level
        level = self.check_level(requested)
        if not self.takes_noise_level:
            return None, 0.0
        # The same pixels as the banded path of large arrays reads (`_estimation_sample`).
        sample = _estimation_sample(lambda start, stop: pixels[start:stop], pixels.shape)
        if level == AUTO:
            return self.level_for_model(auto_level(sample)), 0.0
        level = self.level_for_model(level)
        if not self.config.top_up or top_up_std(level, 0.0) == 0:  # no estimate needed
            return level, 0.0
        try:
            own = noise_already_there(sample)
        except FaceDenoiseError:  # too small to estimate: run at the told level as it is
            return level, 0.0
        return level, top_up_std(level, own)

    def model_input(self, pixels: np.ndarray, noise_level: NoiseLevel = None) -> ModelInput:
        """What the model gets for one image (`ModelInput`): `pixels` with the top-up added
        (the same array when there is none), the level, the top-up's std
        (`level_and_top_up`), and whether the image is grey (its output is then made grey)."""
        # Level and greyness from the pixels the banded path reads too (`_estimation_sample`;
        # on those pixels `level_and_top_up` takes them whole).
        sample = _estimation_sample(lambda start, stop: pixels[start:stop], pixels.shape)
        level, top_up = self.level_and_top_up(sample, noise_level)
        return ModelInput(add_top_up(pixels, 0, top_up), level, top_up, is_grey(sample))

    def level_for_model(self, level: float) -> float:
        """`level`, or the highest level the model was trained on when it is above that (a
        model extrapolates badly: told 1, the starter returned clean faces at 12-15 dB)."""
        level = float(level)
        return level if self.highest_level is None else min(level, self.highest_level)

    # --- model calls ---

    def _predict(self, batch: np.ndarray, levels: list[float | None]) -> np.ndarray:
        """Run the model on float32 (N, H, W, 3) with one level per image (None: no input),
        averaged over `config.ensemble` flips and rotations, then the chroma stage
        (`config.chroma_filter`; it needs a level, so models without one skip it)."""
        started = time.perf_counter()
        batch = np.ascontiguousarray(batch, np.float32)
        column = None if levels[0] is None else np.asarray(levels, np.float32)[:, None]
        result = self_ensemble(lambda view: self.runtime(view, column), batch,
                               self.config.ensemble)
        self.model_seconds += time.perf_counter() - started
        if self.config.chroma_filter and column is not None:
            result = smooth_chroma_batch(result, levels)
        return result

    def _predict_whole(self, batch: np.ndarray, levels: list[float | None]) -> np.ndarray:
        """Whole images: padded by mirroring to the model's multiple here (as its own layer
        would), so every runtime sees sizes it handles; tiny images are edge-padded first."""
        height, width = batch.shape[1:3]
        padded = pad_edges(batch, self.multiple, self.multiple)
        extra = [(-size) % self.multiple for size in padded.shape[1:3]]
        if any(extra):
            padded = np.pad(padded, [(0, 0), (0, extra[0]), (0, extra[1]), (0, 0)], "symmetric")
        return self._predict(padded, levels)[:, :height, :width]

    def needs_tiles(self, shape: tuple[int, ...]) -> bool:
        """True when an image of `shape` (H, W, ...) is larger than the tile on either side."""
        return shape[0] > self.config.tile or shape[1] > self.config.tile

    # --- public denoising ---

    def denoise_pixels(self, pixels: np.ndarray, noise_level: NoiseLevel = None) -> np.ndarray:
        """Denoise one float32 HxWx3 [0, 1] image of any size (tiled when large).

        noise_level: AUTO (estimated once for the whole image), a level in [0, 1], or None
        for the config's (AUTO by default). Returns float32 HxWx3.
        """
        prepared = self.model_input(_as_rgb(pixels), noise_level)
        return self._denoise_pixels_at(prepared.pixels, prepared.level, prepared.grey)

    def _denoise_pixels_at(self, pixels: np.ndarray, level: float | None,
                           grey: bool = False) -> np.ndarray:
        if not self.needs_tiles(pixels.shape):
            return _greyed(self._predict_whole(pixels[None], [level])[0], grey)
        height, width = pixels.shape[:2]
        padded = pad_edges(pixels, self.multiple, self.multiple)
        result = np.empty(padded.shape, np.float32)

        def write_rows(start: int, rows: np.ndarray) -> None:
            result[start : start + len(rows)] = rows

        self._tile(lambda start, stop: padded[start:stop], padded.shape[:2], level, write_rows)
        return _greyed(result[:height, :width], grey)

    def _tile(self, read_rows, shape, level: float | None, write_rows) -> None:
        denoise_tiled_rows(
            read_rows,
            shape,
            lambda batch: self._predict(batch, [level] * len(batch)),
            write_rows,
            tile=self.config.tile,
            tile_overlap=self.config.overlap,
            multiple=self.multiple,
            batch_size=self.config.batch_size,
        )

    def denoise_batch(
        self,
        images: Sequence[np.ndarray],
        noise_levels: NoiseLevel | Sequence[NoiseLevel] = None,
        *,
        return_levels: bool = False,
    ):
        """Denoise float32 HxWx3 [0, 1] images; same-size ones share model calls.

        noise_levels: None (the config's level for every image), one level (AUTO or a float)
        for all, or one per image. Returns the float32 arrays in the order given, and with
        `return_levels` also the level each image used (None for a model without a noise
        input): `(outputs, levels)`. Images larger than the tile are tiled.
        """
        images = [_as_rgb(pixels) for pixels in images]
        requested = _per_image(noise_levels, len(images))
        prepared = [self.model_input(pixels, noise_level)
                    for pixels, noise_level in zip(images, requested, strict=True)]
        levels = [entry.level for entry in prepared]
        results = self.denoise_batch_at(prepared)
        return (results, levels) if return_levels else results

    def denoise_batch_at(self, prepared: Sequence[ModelInput]) -> list[np.ndarray]:
        """`denoise_batch` of images already prepared (`model_input`: level chosen, noise
        topped up): float32 HxWx3 [0, 1] outputs in the order given."""
        results: list[np.ndarray | None] = [None] * len(prepared)
        indices_by_size: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, entry in enumerate(prepared):
            if self.needs_tiles(entry.pixels.shape):
                results[index] = self._denoise_pixels_at(*entry.model_call)
            else:
                indices_by_size[entry.pixels.shape[:2]].append(index)
        for indices in indices_by_size.values():
            for chunk in chunks(indices, self.config.batch_size):
                batch = np.stack([prepared[index].pixels for index in chunk])
                outputs = self._predict_whole(batch, [prepared[index].level for index in chunk])
                for index, output in zip(chunk, outputs, strict=True):
                    results[index] = _greyed(output, prepared[index].grey)
        return results

    def denoise(self, array: np.ndarray, noise_level: NoiseLevel = None) -> np.ndarray:
        """Denoise an image array of any size; returns the same shape and sample type.

        array: HxW (grey), HxWx3 (RGB) or HxWx4 (RGBA; also HxWx1, HxWx2 grey + alpha), as
        uint8, uint16 (full range) or float in [0, 1]. Integer input gives the same dtype back;
        float input gives float32. Alpha is passed through untouched.
        noise_level: AUTO (estimated from the image), a level in [0, 1], or None for the
        config's (AUTO by default).
        """
        result, _ = self.denoise_stored(np.asarray(array), noise_level, "array")
        return result.reshape(np.shape(array))

    def denoise_stored(
        self, stored: np.ndarray, noise_level: NoiseLevel = None, name: str = "array"
    ) -> tuple[np.ndarray, float | None]:
        """Denoise a stored-layout array (see `denoise`); returns (result, level used)."""
        result, level, _ = self.denoise_stored_with_top_up(stored, noise_level, name)
        return result, level

    def denoise_stored_with_top_up(
        self, stored: np.ndarray, noise_level: NoiseLevel = None, name: str = "array"
    ) -> tuple[np.ndarray, float | None, float]:
        """`denoise_stored`, and the std of the noise topped up first (`level_and_top_up`).

        Large images are converted to float and back one band of tile rows at a time, so
        memory grows with the tile, not the image (beyond the input and output arrays).
        """
        if not self.needs_tiles(np.shape(stored)) or min(np.shape(stored)[:2]) < self.multiple:
            image = image_from_array(stored, name, check_range=True)
            prepared = self.model_input(image.pixels, noise_level)
            clean = self._denoise_pixels_at(*prepared.model_call)
            layout = dict(dtype=image.dtype, grey=image.grey, alpha=image.alpha)
            return array_from_image(clean, **layout), prepared.level, prepared.top_up
        return self._denoise_stored_in_bands(stored, noise_level, name)

    def _denoise_stored_in_bands(self, stored, noise_level, name):
        def read_pixels(start: int, stop: int) -> np.ndarray:
            return image_from_array(stored[start:stop], name, check_range=True).pixels

        sample = _estimation_sample(read_pixels, stored.shape)
        level, top_up = self.level_and_top_up(sample, noise_level)
        grey = is_grey(sample)
        del sample  # up to 1,024 full rows in float32: not kept while the bands run

        def read_rows(start: int, stop: int) -> np.ndarray:
            return add_top_up(read_pixels(start, stop), start, top_up)

        first = image_from_array(stored[:1], name)  # the layout: sample type, grey, alpha
        output = None

        def write_rows(start: int, rows: np.ndarray) -> None:
            nonlocal output
            alpha = None if first.alpha is None else stored[start : start + len(rows), :, -1]
            band = array_from_image(_greyed(rows, grey), dtype=first.dtype, grey=first.grey,
                                    alpha=alpha)
            if output is None:
                output = np.empty((stored.shape[0], *band.shape[1:]), band.dtype)
            output[start : start + len(rows)] = band

        self._tile(read_rows, stored.shape[:2], level, write_rows)
        return output, level, top_up


class ModelInput(NamedTuple):
    """One image as the model gets it (`Denoiser.model_input`)."""

    pixels: np.ndarray  # float32 HxWx3 [0, 1], noise topped up when a level was told above it
    level: float | None  # None for a model without a noise input
    top_up: float  # the std of the noise added first (0: none)
    grey: bool  # a black-and-white image: its output is made grey (`_greyed`)

    @property
    def model_call(self) -> tuple[np.ndarray, float | None, bool]:
        return self.pixels, self.level, self.grey


def _greyed(pixels: np.ndarray, grey: bool) -> np.ndarray:
    """Grey in, grey out: `pixels` (..., 3) with each pixel's channels replaced by their mean
    when `grey`. The network draws faint colour on black-and-white photos (the starter: up to
    10/255 on a grey face told 0.3; with noise topped up, blotches up to 51/255)."""
    if not grey:
        return pixels
    return np.repeat(pixels.mean(axis=-1, keepdims=True, dtype=np.float32), 3, axis=-1)


def _estimation_sample(read_rows, shape: tuple[int, ...]) -> np.ndarray:
    """Pixels to estimate a level from: the whole image when small, else a centre crop of
    `_ESTIMATE_CROP` rows over the full width, at most `_ESTIMATE_PIXELS` pixels."""
    height, width = shape[:2]
    if height * width <= _ESTIMATE_PIXELS:
        return read_rows(0, height)
    rows = max(3, min(height, _ESTIMATE_CROP, _ESTIMATE_PIXELS // width))
    top = (height - rows) // 2
    band = read_rows(top, top + rows)
    columns = min(width, _ESTIMATE_PIXELS // rows)
    left = (width - columns) // 2
    return np.ascontiguousarray(band[:, left : left + columns])


def _per_image(noise_levels, count: int) -> list[NoiseLevel]:
    if noise_levels is None or isinstance(noise_levels, str | int | float):
        return [noise_levels] * count
    noise_levels = list(noise_levels)
    if len(noise_levels) != count:
        raise FaceDenoiseError(
            f"Got {len(noise_levels)} noise levels for {count} images; give one per image."
        )
    return noise_levels


def _as_rgb(pixels: np.ndarray) -> np.ndarray:
    pixels = np.asarray(pixels, np.float32)
    if pixels.ndim != 3 or pixels.shape[2] != 3 or 0 in pixels.shape:
        raise FaceDenoiseError(
            f"Expected a float RGB image of shape HxWx3, got {pixels.shape}; "
            "use Denoiser.denoise for grey, RGBA or integer arrays."
        )
    return pixels
