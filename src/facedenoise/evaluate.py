"""Score a model, and optionally classical baselines, by PSNR/SSIM on noisy/clean pairs.

`evaluate(...)` reads the pairs of a prepared split (or a user's own folders), runs the model
and every baseline on the same noisy files, optionally sweeps the same clean images over
several noise levels, and writes a report (see `facedenoise.report`). Images are float32 RGB in
[0, 1]; PSNR/SSIM use max_val 1.0 (`facedenoise.metrics`). Progress goes to an optional
`on_progress(done, total)` callback; nothing here prints.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from facedenoise import __version__
from facedenoise.baselines import Baseline, parse_baselines
from facedenoise.config import (
    AUTO,
    DATA_DIR,
    NOISE_FACTOR,
    NOISE_LEVEL_RANGE,
    RUNS_DIR,
    DenoiseConfig,
    EvaluateConfig,
)
from facedenoise.errors import FaceDenoiseError, check_choice
from facedenoise.imageio import image_from_array, list_images, quantize, read_image
from facedenoise.inference.ensemble import check_ensemble
from facedenoise.metrics import SSIM_WINDOW
from facedenoise.report import (
    INPUT,
    MODEL,
    MODEL_GIVEN_LEVEL,
    Example,
    MethodScores,
    Report,
    SweepLevel,
    write_report,
)

TYPICAL_QUANTILES = (0.75, 0.5, 0.25)  # of the model's PSNR: the "typical" rows of samples.png

__all__ = ["Report", "default_out_dir", "evaluate", "pairs_from_folders", "parse_noise_levels",
           "sweep_noisy"]

ProgressCallback = Callable[[int, int], None]


def evaluate(
    model: str | Path | None = None,
    data_dir: str | Path = DATA_DIR,
    out: str | Path | None = None,
    *,
    config: EvaluateConfig | None = None,
    pairs: tuple[str | Path, str | Path] | None = None,
    runs_dir: str | Path = RUNS_DIR,
    noise_factor: float | None = None,
    on_progress: ProgressCallback | None = None,
    **settings,
) -> Report:
    """Evaluate a model (and baselines) and write the report files.

    model: run folder, .keras/.onnx file, 'latest' or 'starter'; None takes the default model
        (the newest run in `runs_dir`, else the packaged starter weights), as `denoise` does.
    data_dir: a prepared dataset (ignored when `pairs` is given).
    out: report folder; None means `default_out_dir(model file, split or "pairs")`.
    config: split, batch size, limit, baselines, sweep levels and seed, ensemble, chroma
        stage (EvaluateConfig; reports of an ensemble go to `<split>-ensemble<N>` and
        without the chroma stage to `<split>-no-chroma-filter` by default);
        `settings` override single fields of it, e.g. `split="val", limit=10`.
    pairs: (noisy_dir, clean_dir) of the user's own images, matched by file name, any size.
    noise_factor: the noise level of the fixed noisy files (what the baselines and the model
        told the level assume); None takes the dataset's manifest, or 0.3 for `pairs`.
    on_progress: called with (done, total) work units (one image through one method).
    Returns the Report (per-image PSNR in dB and SSIM, sweep, skipped pairs, `out_dir` and
    `files` set). A pair that cannot be read or scored is skipped with a reason; raises
    FaceDenoiseError when none is left, for an unprepared split, an unusable model, empty
    folders, unmatched names, bad settings or an unwritable report folder.
    """
    config = _settings(config, settings)
    chosen = parse_baselines(config.baselines)  # before any slow work: a typo should fail fast
    image_pairs, names, info, noise_factor = _find_pairs(data_dir, config.split, pairs,
                                                         noise_factor)
    image_pairs, names = image_pairs[:config.limit], names[:config.limit]
    runner = _ModelRunner.load(model, runs_dir, config)
    name = config.split if pairs is None else "pairs"
    if config.ensemble > 1:  # beside the plain report, not over it
        name += f"-ensemble{config.ensemble}"
    if runner.takes_level and not config.chroma_filter:  # models without a level skip it
        name += "-no-chroma-filter"
    out_dir = Path(out) if out is not None else default_out_dir(runner.source, name)
    _check_writable(out_dir)

    methods_per_image = 1 + runner.takes_level + len(chosen)
    progress = _Progress(on_progress, len(names),
                         methods_per_image * (1 + len(config.noise_levels)))
    scored = _score_pairs(image_pairs, names, runner, chosen, noise_factor, progress)
    sweep = _sweep(scored, config, runner, chosen, progress)
    info.update(_run_info(runner, chosen, noise_factor, config))
    report = Report(image_names=scored.names, methods=scored.methods, info=info,
                    out_dir=out_dir, sweep=sweep, skipped=scored.skipped)
    examples = _examples(report, scored.pairs, runner, chosen, noise_factor)
    try:
        write_report(report, examples)
    except OSError as error:
        raise _unwritable(out_dir, error) from error
    return report


def _settings(config: EvaluateConfig | None, settings: dict) -> EvaluateConfig:
    """`config` (default EvaluateConfig()) with `settings` applied, checked."""
    config = config or EvaluateConfig()
    unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(EvaluateConfig)})
    if unknown:
        raise TypeError(f"evaluate() got unknown settings: {', '.join(unknown)}")
    config = dataclasses.replace(config, **settings)
    if config.limit is not None and config.limit < 1:
        raise FaceDenoiseError(f"--limit must be at least 1, not {config.limit}.")
    if config.batch_size < 1:
        raise FaceDenoiseError(f"--batch-size must be at least 1, not {config.batch_size}.")
    check_ensemble(config.ensemble)
    return dataclasses.replace(config, noise_levels=check_noise_levels(config.noise_levels))


def parse_noise_levels(text: str | None) -> tuple[float, ...]:
    """'0,0.05,0.1' -> (0.0, 0.05, 0.1), sorted, without repeats; '' or None -> ().

    Raises FaceDenoiseError for anything that is not a number in NOISE_LEVEL_RANGE.
    """
    return check_noise_levels([part for part in (text or "").split(",") if part.strip()])


def check_noise_levels(levels) -> tuple[float, ...]:
    """The levels (numbers or numeric strings) as sorted unique floats.

    Raises FaceDenoiseError for 'auto' (a sweep needs the true level) and for anything that
    is not a number in NOISE_LEVEL_RANGE.
    """
    from facedenoise.inference.levels import check_noise_level

    low, high = NOISE_LEVEL_RANGE
    checked = []
    for level in levels:
        try:
            checked.append(check_noise_level(level))
        except FaceDenoiseError:
            checked.append(None)
        if checked[-1] in (None, AUTO):  # a sweep adds the noise itself: it needs numbers
            raise FaceDenoiseError(
                f"--noise-levels takes noise levels from {low:g} to {high:g} separated by "
                f"commas, like 0,0.1,0.3; '{str(level).strip()}' is not one."
            )
    return tuple(sorted(set(checked)))


def sweep_noisy(clean: np.ndarray, level: float, seed: int, image_name: str) -> np.ndarray:
    """The sweep's input for one clean image at one noise level (float32 RGB in [0, 1]).

    clip(clean + level * N(0, 1), 0, 1) rounded to 8 bits, as `prepare` stores its noisy
    files, from a generator seeded by (seed, "<image_name>@<level>"), so that every level
    and image has its own noise and any one can be regenerated alone. Level 0 returns the
    clean image itself.
    """
    from facedenoise.noise import add_gaussian_noise, noise_rng

    if level == 0:
        return clean
    rng = noise_rng(seed, f"{image_name}@{level:g}")
    return image_from_array(quantize(add_gaussian_noise(clean, level, rng))).pixels


def default_out_dir(model_path: Path, name: str) -> Path:
    """Where a report goes by default.

    `<run>/eval/<name>/` for a run's best.keras, `<folder>/eval/<file stem>/<name>/` for any
    other model file, and `./eval/starter/<name>/` for the packaged starter weights (which
    live inside the installed package).
    """
    from facedenoise import runs

    model_path = Path(model_path)
    if runs.is_packaged(model_path):
        return Path("eval") / "starter" / name
    if model_path.name == runs.BEST:
        return model_path.parent / "eval" / name
    return model_path.parent / "eval" / model_path.stem / name


def _unwritable(out_dir: Path, error: OSError) -> FaceDenoiseError:
    reason = error.strerror or str(error)
    return FaceDenoiseError(f"Cannot write the report to {out_dir} ({reason}); "
                            "pass a writable folder with --out.")


def _check_writable(out_dir: Path) -> None:
    """Fail before the slow work when the report folder cannot be created or written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as error:
        raise _unwritable(out_dir, error) from error


def _find_pairs(data_dir, split: str, pairs, noise_factor: float | None):
    """(noisy, clean) paths, image names, report info and the noise factor to assume."""
    from facedenoise import dataset

    if pairs is not None:
        image_pairs = pairs_from_folders(*pairs)
        names = [noisy.relative_to(pairs[0]).with_suffix("").as_posix()
                 for noisy, _ in image_pairs]
        info = {"pairs": f"{pairs[0]} | {pairs[1]}"}
        noise_factor = NOISE_FACTOR if noise_factor is None else noise_factor
    else:
        check_choice("split", split, dataset.NOISY_SPLITS)
        data_dir = Path(data_dir)
        image_pairs = dataset.split_pairs(data_dir, split)
        names = [noisy.stem for noisy, _ in image_pairs]  # the dataset's image ids
        info = {"split": split, "data_dir": str(data_dir),
                "manifest_sha256": dataset.manifest_sha256(data_dir)}
        noise_factor = dataset.noise_factor_of(data_dir) if noise_factor is None else noise_factor
    low, high = NOISE_LEVEL_RANGE
    if not (math.isfinite(noise_factor) and low < noise_factor <= high):
        raise FaceDenoiseError(
            f"The noise factor must lie in ({low:g}, {high:g}], not {noise_factor}.")
    return image_pairs, names, info, float(noise_factor)


def pairs_from_folders(noisy_dir: str | Path, clean_dir: str | Path) -> list[tuple[Path, Path]]:
    """(noisy, clean) files matched by relative path without extension, sorted.

    `noisy/a/b.png` pairs with `clean/a/b.png` or `clean/a/b.jpg`. Every noisy image needs a
    clean one; extra clean images are ignored. Raises FaceDenoiseError for a missing or empty
    folder, or an unmatched or ambiguous name. Unreadable files and pairs whose sizes differ
    are found (and skipped with a reason) when they are read.
    """
    noisy_dir, clean_dir = Path(noisy_dir), Path(clean_dir)
    for folder in (noisy_dir, clean_dir):
        if not folder.is_dir():
            raise FaceDenoiseError(f"{folder} is not a folder; --pairs takes NOISY_DIR CLEAN_DIR.")
    noisy_files, clean_files = list_images(noisy_dir), list_images(clean_dir)
    for folder, files in ((noisy_dir, noisy_files), (clean_dir, clean_files)):
        if not files:
            raise FaceDenoiseError(f"{folder} holds no images; put PNG/JPEG/TIFF files in it.")
    clean_by_key: dict[Path, Path] = {}
    for path in clean_files:
        key = path.relative_to(clean_dir).with_suffix("")
        if key in clean_by_key:
            raise FaceDenoiseError(
                f"{clean_by_key[key]} and {path} have the same name; keep one of them."
            )
        clean_by_key[key] = path
    image_pairs = [(path, clean_by_key.get(path.relative_to(noisy_dir).with_suffix("")))
                   for path in noisy_files]
    unmatched = [noisy.name for noisy, clean in image_pairs if clean is None]
    if unmatched:
        raise FaceDenoiseError(
            f"{len(unmatched)} noisy image(s) have no clean image of the same name in "
            f"{clean_dir} (first: {unmatched[0]}); pairs are matched by file name."
        )
    return image_pairs


def _read_pair(noisy: Path, clean: Path) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float32 RGB; FaceDenoiseError (with a reason) when a file cannot be
    decoded, the sizes differ or the images are too small for SSIM."""
    noisy_pixels, clean_pixels = read_image(noisy).pixels, read_image(clean).pixels
    if noisy_pixels.shape != clean_pixels.shape:
        (noisy_h, noisy_w), (clean_h, clean_w) = noisy_pixels.shape[:2], clean_pixels.shape[:2]
        raise FaceDenoiseError(
            f"{noisy} is {noisy_w}x{noisy_h} but {clean} is {clean_w}x{clean_h}; a noisy "
            "image and its clean one must be the same size."
        )
    if min(noisy_pixels.shape[:2]) < SSIM_WINDOW:
        raise FaceDenoiseError(
            f"{noisy} is smaller than {SSIM_WINDOW}x{SSIM_WINDOW} pixels, too small for SSIM."
        )
    return noisy_pixels, clean_pixels


def _device_name() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name', gpus[0].name)}"
    return f"CPU: {platform.processor() or platform.machine()}"


def _run_info(runner: _ModelRunner, baselines: list[Baseline], noise_factor: float,
              config: EvaluateConfig) -> dict:
    info = {
        "model": str(runner.source),
        "architecture": runner.name,
        "parameters": runner.parameters,
        "model_takes_noise_level": runner.takes_level,
        "ensemble": runner.denoiser.config.ensemble,
        "chroma_filter": runner.denoiser.config.chroma_filter,
        "noise_factor": noise_factor,
        "baselines": ",".join(baseline.name for baseline in baselines) or "none",
        "device": _device_name(),
        "facedenoise_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if config.noise_levels:
        info.update(noise_levels=list(config.noise_levels), sweep_seed=config.sweep_seed)
    return info


class _Progress:
    """Counts work units (one image through one method) for `on_progress(done, total)`.

    per_image: the units of one image (every method, on the fixed files and at each sweep
    level); a skipped pair advances by all of them at once.
    """

    def __init__(self, callback: ProgressCallback | None, images: int, per_image: int):
        self.callback, self.per_image = callback, per_image
        self.total, self.done = images * per_image, 0

    def advance(self, count: int) -> None:
        self.done += count
        if self.callback is not None:
            self.callback(min(self.done, self.total), self.total)


def _architecture_beside(model_file: Path) -> str:
    """The architecture named by the config.json beside a model file (ONNX files carry no
    Keras name), else the file's stem."""
    from facedenoise.config import load_run_config
    from facedenoise.runs import CONFIG

    try:
        return load_run_config(model_file.parent / CONFIG).model.arch
    except FaceDenoiseError:
        return model_file.stem


class _ModelRunner:
    """The model behind a `Denoiser` (the same loading rule, tiling and ONNX support as
    `facedenoise denoise`), timing model calls after one untimed warm-up batch."""

    def __init__(self, denoiser):
        self.denoiser = denoiser
        self.source = Path(denoiser.source)
        model = denoiser.model  # a Keras model, or an OnnxRuntime (no name, no count)
        is_keras = hasattr(model, "count_params")
        self.name = model.name if is_keras else _architecture_beside(self.source)
        self.parameters = int(model.count_params()) if is_keras else None
        self.takes_level = bool(denoiser.takes_noise_level)
        self.seconds, self.images, self._warm = 0.0, 0, False

    @classmethod
    def load(cls, model, runs_dir, config: EvaluateConfig) -> _ModelRunner:
        from facedenoise.inference import Denoiser

        settings = DenoiseConfig(batch_size=config.batch_size, ensemble=config.ensemble,
                                 chroma_filter=config.chroma_filter)
        return cls(Denoiser.load(model, runs_dir=Path(runs_dir), config=settings))

    def __call__(self, images: list[np.ndarray], level: float | str = AUTO,
                 timed: bool = True) -> tuple[list[np.ndarray], np.ndarray | None]:
        """Denoised float32 RGB [0, 1] images in the order given, and the noise level each
        one used (None for a model without a noise input)."""
        if not self._warm:
            self._denoise(images[:self.denoiser.config.batch_size], level)  # traces, allocates
            self._warm = True
        before = self.denoiser.model_seconds
        outputs, levels = self._denoise(images, level)
        if timed:
            self.seconds += self.denoiser.model_seconds - before
            self.images += len(images)
        return outputs, levels

    def _denoise(self, images, level):
        if not self.takes_level:  # AUTO simply runs a model without a noise input
            return self.denoiser.denoise_batch(images, AUTO), None
        outputs, levels = self.denoiser.denoise_batch(images, level, return_levels=True)
        return outputs, np.asarray(levels, np.float64)

    @property
    def images_per_second(self) -> float | None:
        return self.images / self.seconds if self.seconds > 0 else None


def _psnr_ssim(clean: list[np.ndarray], restored: list[np.ndarray]):
    """PSNR and SSIM of each image pair; runs of same-sized images are scored as one batch
    (one TensorFlow call for a batch of 128x128 split images instead of one per image)."""
    from facedenoise.metrics import psnr_ssim

    psnr, ssim, start = [], [], 0
    while start < len(clean):
        stop = start + 1
        while stop < len(clean) and clean[stop].shape == clean[start].shape:
            stop += 1
        group_psnr, group_ssim = psnr_ssim(np.stack(clean[start:stop]),
                                           np.stack(restored[start:stop]))
        psnr += list(group_psnr)
        ssim += list(group_ssim)
        start = stop
    return psnr, ssim


class _Scores:
    """Per-image scores of every method, added batch by batch."""

    def __init__(self, specs: list[tuple[str, str]]):
        self.specs = specs  # (name, label), the input first
        self.psnr = {name: [] for name, _ in specs}
        self.ssim = {name: [] for name, _ in specs}
        self.levels: dict[str, list] = {}

    def add(self, clean: list[np.ndarray], outputs: dict, levels: dict) -> None:
        """Score one batch: `outputs` maps every method name to its images, in `clean`'s
        order; `levels` maps model names to the levels they used (or None)."""
        for name, _ in self.specs:
            psnr, ssim = _psnr_ssim(clean, outputs[name])
            self.psnr[name].extend(psnr)
            self.ssim[name].extend(ssim)
        for name, used in levels.items():
            if used is not None:
                self.levels.setdefault(name, []).extend(used)

    def methods(self) -> list[MethodScores]:
        return [MethodScores(name, label, np.array(self.psnr[name], np.float64),
                             np.array(self.ssim[name], np.float64),
                             levels_used=(np.array(self.levels[name])
                                          if name in self.levels else None))
                for name, label in self.specs]


def _specs(runner: _ModelRunner, baselines: list[Baseline], told: str) -> list[tuple[str, str]]:
    ensemble = runner.denoiser.config.ensemble
    model = runner.name if ensemble == 1 else f"{runner.name}, ensemble {ensemble}"
    if runner.takes_level and not runner.denoiser.config.chroma_filter:
        model += ", no chroma filter"
    specs = [(INPUT, "Noisy input"), (MODEL, f"Model ({model})")]
    if runner.takes_level:
        specs.append((MODEL_GIVEN_LEVEL, f"Model ({model}), told {told}"))
    return specs + [(baseline.name, baseline.label) for baseline in baselines]


def _run_methods(noisy, level, runner, baselines, progress, seconds=None, timed=True):
    """Every method's outputs for a list of noisy images at a known `level`, and the noise
    levels the model used. `seconds` (baseline name -> total) collects baseline timings."""
    outputs, levels = {INPUT: noisy}, {}
    outputs[MODEL], levels[MODEL] = runner(noisy, AUTO, timed=timed)
    progress.advance(len(noisy))
    if runner.takes_level:
        outputs[MODEL_GIVEN_LEVEL], levels[MODEL_GIVEN_LEVEL] = runner(noisy, level, timed=False)
        progress.advance(len(noisy))
    for baseline in baselines:
        began = time.perf_counter()
        outputs[baseline.name] = [baseline.run(image, level) for image in noisy]
        if seconds is not None:
            seconds[baseline.name] += time.perf_counter() - began
        progress.advance(len(noisy))
    return outputs, levels


@dataclasses.dataclass
class _Scored:
    """The main evaluation's result: the pairs that were scored and their scores."""

    names: list[str]
    pairs: list[tuple[Path, Path]]
    methods: list[MethodScores]
    skipped: list[dict]


def _read_batch(image_pairs, names, progress):
    """The readable pairs of a batch: (kept names, kept pairs, noisy, clean, skipped)."""
    kept_names, kept_pairs, noisy, clean, skipped = [], [], [], [], []
    for name, pair in zip(names, image_pairs, strict=True):
        try:
            noisy_pixels, clean_pixels = _read_pair(*pair)
        except FaceDenoiseError as error:
            skipped.append({"image": name, "reason": str(error)})
            progress.advance(progress.per_image)
            continue
        kept_names.append(name)
        kept_pairs.append(pair)
        noisy.append(noisy_pixels)
        clean.append(clean_pixels)
    return kept_names, kept_pairs, noisy, clean, skipped


def _score_pairs(image_pairs, names, runner, baselines, noise_factor, progress) -> _Scored:
    """Per-image scores of the input, the model and each baseline, reading in batches.

    A pair that cannot be read is skipped (with its reason); none left raises.
    """
    scores = _Scores(_specs(runner, baselines, f"{noise_factor:g}"))
    scored = _Scored([], [], [], [])
    seconds = {baseline.name: 0.0 for baseline in baselines}
    for baseline in baselines:
        baseline.warm_up()  # lazy library imports are not part of the timing
    batch_size = runner.denoiser.config.batch_size
    for start in range(0, len(image_pairs), batch_size):
        kept_names, kept_pairs, noisy, clean, skipped = _read_batch(
            image_pairs[start:start + batch_size], names[start:start + batch_size], progress)
        scored.names += kept_names
        scored.pairs += kept_pairs
        scored.skipped += skipped
        if noisy:
            outputs, levels = _run_methods(noisy, noise_factor, runner, baselines, progress,
                                           seconds)
            scores.add(clean, outputs, levels)
    if not scored.names:
        first = scored.skipped[0]
        raise FaceDenoiseError(f"No pair could be scored; {first['image']}: {first['reason']}")
    scored.methods = scores.methods()
    scored.methods[1].images_per_second = runner.images_per_second
    for method in scored.methods:
        if method.name in seconds and seconds[method.name] > 0:
            method.images_per_second = len(scored.names) / seconds[method.name]
    return scored


def _sweep(scored: _Scored, config: EvaluateConfig, runner, baselines, progress):
    """Every method on the scored pairs' clean images at each of `config.noise_levels`.

    Each clean image is read once; its noisy versions come from `sweep_noisy`.
    """
    if not config.noise_levels:
        return []
    all_scores = {level: _Scores(_specs(runner, baselines, "the level"))
                  for level in config.noise_levels}
    batch_size = runner.denoiser.config.batch_size
    for start in range(0, len(scored.pairs), batch_size):
        names = scored.names[start:start + batch_size]
        clean = [read_image(clean_path).pixels
                 for _, clean_path in scored.pairs[start:start + batch_size]]
        for level, scores in all_scores.items():
            noisy = [sweep_noisy(image, level, config.sweep_seed, name)
                     for image, name in zip(clean, names, strict=True)]
            outputs, levels = _run_methods(noisy, level, runner, baselines, progress,
                                           timed=False)
            scores.add(clean, outputs, levels)
    return [SweepLevel(level, scores.methods()) for level, scores in all_scores.items()]


def _example_indices(model_psnr: np.ndarray) -> list[tuple[str, int]]:
    """(role, index) of the best, a few typical and the worst images by the model's PSNR.

    With few images the roles overlap; best and worst keep their label, typical rows fill in.
    """
    order = np.argsort(model_psnr, kind="stable")
    best, worst = int(order[-1]), int(order[0])
    typical = [int(order[round(q * (len(order) - 1))]) for q in TYPICAL_QUANTILES]
    typical = [index for index in dict.fromkeys(typical) if index not in (best, worst)]
    chosen = [("best", best), *[("typical", index) for index in typical]]
    return chosen + ([("worst", worst)] if worst != best else [])


def _examples(report: Report, image_pairs, runner, baselines, noise_factor) -> list[Example]:
    """The images shown in samples.png, denoised again rather than kept in memory: a split
    of thousands of images times every method would not fit, and every method is
    deterministic."""
    examples = []
    for role, index in _example_indices(report.method(MODEL).psnr):
        noisy, clean = _read_pair(*image_pairs[index])
        outputs = {MODEL: runner([noisy], AUTO, timed=False)[0][0]}
        if runner.takes_level:
            outputs[MODEL_GIVEN_LEVEL] = runner([noisy], noise_factor, timed=False)[0][0]
        for baseline in baselines:
            outputs[baseline.name] = baseline.run(noisy, noise_factor)
        examples.append(Example(role, index, noisy, clean, outputs))
    return examples
