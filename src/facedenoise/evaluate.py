"""Score a model, and optionally classical baselines, by PSNR/SSIM on fixed noisy/clean pairs.

`evaluate(...)` reads the pairs of a prepared split (or a user's own folders), runs the model
and every baseline on the same noisy files, and writes a report (see `facedenoise.report`).
Images are float32 RGB in [0, 1]; PSNR/SSIM use max_val 1.0 (`facedenoise.metrics`).
"""

from __future__ import annotations

import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from facedenoise import __version__
from facedenoise.baselines import Baseline, parse_baselines
from facedenoise.config import NOISE_FACTOR, DenoiseConfig
from facedenoise.errors import FaceDenoiseError
from facedenoise.imageio import list_images, read_image
from facedenoise.metrics import SSIM_WINDOW
from facedenoise.report import INPUT, MODEL, Example, MethodScores, Report, write_report

SPLITS = ("test", "val")
BATCH_SIZE = 16  # 128x128 split images per model call
TYPICAL_QUANTILES = (0.75, 0.5, 0.25)  # of the model's PSNR: the "typical" rows of samples.png

__all__ = ["Report", "default_out_dir", "evaluate", "pairs_from_folders"]


def evaluate(
    model: str | Path | None = None,
    data_dir: str | Path = "data",
    split: str = "test",
    out: str | Path | None = None,
    baselines: str | None = "",
    limit: int | None = None,
    pairs: tuple[str | Path, str | Path] | None = None,
    runs_dir: str | Path = "runs",
    show_progress: bool = False,
    noise_factor: float | None = None,
) -> Report:
    """Evaluate a model (and baselines) and write the report files.

    model: run folder or .keras file; None takes the newest run in `runs_dir`, else the
        packaged starter weights.
    data_dir, split: a prepared dataset and "test" or "val" (ignored when `pairs` is given).
    out: report folder; None means `default_out_dir(model file, split or "pairs")`.
    baselines: comma-separated names from facedenoise.baselines.BASELINES, or "all".
    limit: score only the first `limit` pairs (sorted by name).
    pairs: (noisy_dir, clean_dir) of the user's own images, matched by file name, any size.
    noise_factor: the noise std on [0, 1] the baselines assume; None takes the dataset's
        manifest, or 0.3 for `pairs`.
    Returns the Report (per-image PSNR in dB and SSIM, with `out_dir` and `files` set).
    Raises FaceDenoiseError for an unprepared split, an unusable model, empty folders,
    unmatched names or pairs whose sizes differ.
    """
    from facedenoise import runs

    chosen = parse_baselines(baselines)  # before any slow work: a typo should fail fast
    if limit is not None and limit < 1:
        raise FaceDenoiseError(f"--limit must be at least 1, not {limit}.")
    if pairs is not None:
        image_pairs = pairs_from_folders(*pairs)
        info = {"pairs": f"{pairs[0]} | {pairs[1]}"}
        noise_factor = NOISE_FACTOR if noise_factor is None else noise_factor
    else:
        image_pairs, info = _split_pairs(Path(data_dir), split)
        noise_factor = info["noise_factor"] if noise_factor is None else noise_factor
    if noise_factor <= 0:
        raise FaceDenoiseError(f"The noise factor must be positive, not {noise_factor}.")
    image_pairs = image_pairs[:limit]

    model_path = runs.resolve_model(None if model is None else str(model), Path(runs_dir),
                                    prefer="run")
    keras_model = runs.load_model(model_path)
    out_dir = Path(out) if out is not None else default_out_dir(
        model_path, split if pairs is None else "pairs")

    runner = _ModelRunner(keras_model)
    methods = _score_pairs(image_pairs, runner, chosen, noise_factor, show_progress)
    methods[1].label = f"Model ({keras_model.name})"
    info.update({
        "model": str(model_path),
        "architecture": keras_model.name,
        "parameters": int(keras_model.count_params()),
        "noise_factor": noise_factor,
        "baselines": ",".join(baseline.name for baseline in chosen) or "none",
        "device": _device_name(),
        "facedenoise_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    report = Report(
        image_names=[_name_of(noisy) for noisy, _ in image_pairs],
        methods=methods,
        info=info,
        out_dir=out_dir,
    )
    examples = _examples(report, image_pairs, runner, chosen, noise_factor)
    write_report(report, examples)
    return report


def default_out_dir(model_path: Path, name: str) -> Path:
    """Where a report goes by default.

    `<run>/eval/<name>/` for a run's best.keras, `<folder>/eval/<file stem>/<name>/` for any
    other .keras file, and `./eval/starter/<name>/` for the packaged starter weights (which
    live inside the installed package).
    """
    from facedenoise import runs

    model_path = Path(model_path)
    packaged = runs.packaged_weights()
    if packaged is not None and model_path.resolve() == packaged.resolve():
        return Path("eval") / "starter" / name
    if model_path.name == runs.BEST:
        return model_path.parent / "eval" / name
    return model_path.parent / "eval" / model_path.stem / name


def _split_pairs(data_dir: Path, split: str) -> tuple[list[tuple[Path, Path]], dict]:
    from facedenoise import dataset

    if split not in SPLITS:
        raise FaceDenoiseError(f"Unknown split '{split}'; use one of {', '.join(SPLITS)}.")
    image_pairs = dataset.split_pairs(data_dir, split)
    if not image_pairs:
        raise FaceDenoiseError(f"The '{split}' split of {data_dir} holds no images.")
    info = {
        "split": split,
        "data_dir": str(data_dir),
        "manifest_sha256": dataset.manifest_sha256(data_dir),
        "noise_factor": dataset.noise_factor_of(data_dir),
    }
    return image_pairs, info


def pairs_from_folders(noisy_dir: str | Path, clean_dir: str | Path) -> list[tuple[Path, Path]]:
    """(noisy, clean) files matched by relative path without extension, sorted.

    `noisy/a/b.png` pairs with `clean/a/b.png` or `clean/a/b.jpg`. Every noisy image needs a
    clean one; extra clean images are ignored. Raises FaceDenoiseError for a missing or empty
    folder, an unmatched or ambiguous name, or a pair whose sizes differ.
    """
    noisy_dir, clean_dir = Path(noisy_dir), Path(clean_dir)
    for folder in (noisy_dir, clean_dir):
        if not folder.is_dir():
            raise FaceDenoiseError(f"{folder} is not a folder; --pairs takes NOISY_DIR CLEAN_DIR.")
    noisy_files = list_images(noisy_dir)
    clean_files = list_images(clean_dir)
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
    image_pairs, unmatched = [], []
    for path in noisy_files:
        clean = clean_by_key.get(path.relative_to(noisy_dir).with_suffix(""))
        if clean is None:
            unmatched.append(path.name)
        image_pairs.append((path, clean))
    if unmatched:
        raise FaceDenoiseError(
            f"{len(unmatched)} noisy image(s) have no clean image of the same name in "
            f"{clean_dir} (first: {unmatched[0]}); pairs are matched by file name."
        )
    for noisy, clean in image_pairs:
        _check_sizes(noisy, clean, _stored_size(noisy), _stored_size(clean))
    return image_pairs


def _stored_size(path: Path) -> tuple[int, int] | None:
    """(height, width) from the file header, without decoding; None when PIL cannot tell.

    Only a fast early check for --pairs: `_read_pair` checks the decoded sizes again.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
            if int(image.getexif().get(0x0112, 1)) in (5, 6, 7, 8):  # rotated by 90 degrees
                width, height = height, width
            return height, width
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None


def _check_sizes(noisy: Path, clean: Path, noisy_size, clean_size) -> None:
    if noisy_size is None or clean_size is None:
        return
    if tuple(noisy_size) != tuple(clean_size):
        raise FaceDenoiseError(
            f"{noisy} is {noisy_size[1]}x{noisy_size[0]} but {clean} is "
            f"{clean_size[1]}x{clean_size[0]}; a noisy image and its clean one must be the "
            "same size."
        )
    if min(noisy_size) < SSIM_WINDOW:
        raise FaceDenoiseError(
            f"{noisy} is smaller than {SSIM_WINDOW}x{SSIM_WINDOW} pixels, too small for SSIM."
        )


def _read_pair(noisy: Path, clean: Path) -> tuple[np.ndarray, np.ndarray]:
    noisy_pixels, clean_pixels = read_image(noisy).pixels, read_image(clean).pixels
    _check_sizes(noisy, clean, noisy_pixels.shape[:2], clean_pixels.shape[:2])
    return noisy_pixels, clean_pixels


def _name_of(path: Path) -> str:
    return Path(path).stem


def _device_name() -> str:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        return f"GPU: {details.get('device_name', gpus[0].name)}"
    return f"CPU: {platform.processor() or platform.machine()}"


class _ModelRunner:
    """The model behind `Denoiser` (same-sized images share a call, large ones are tiled),
    adding up the seconds spent in model calls after one untimed warm-up batch."""

    def __init__(self, keras_model):
        from facedenoise.inference import Denoiser

        self.denoiser = Denoiser(keras_model, DenoiseConfig(batch_size=BATCH_SIZE))
        self.seconds = 0.0
        self.images = 0
        self._warm = False

    def __call__(self, images: list[np.ndarray], timed: bool = True) -> list[np.ndarray]:
        """Denoised float32 RGB [0, 1] images, in the order given."""
        if not self._warm:
            self.denoiser.denoise_batch(images[:BATCH_SIZE])  # traces and allocates
            self._warm = True
        before = self.denoiser.model_seconds
        outputs = self.denoiser.denoise_batch(images)
        if timed:
            self.seconds += self.denoiser.model_seconds - before
            self.images += len(images)
        return outputs

    @property
    def images_per_second(self) -> float | None:
        return self.images / self.seconds if self.seconds > 0 else None


def _same_shape_runs(images: list[np.ndarray]) -> list[list[np.ndarray]]:
    """Consecutive images of equal shape, grouped (the split's 128x128 files form one group)."""
    groups: list[list[np.ndarray]] = []
    for image in images:
        if groups and groups[-1][0].shape == image.shape:
            groups[-1].append(image)
        else:
            groups.append([image])
    return groups


def _scores(clean: list[np.ndarray], restored: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """PSNR and SSIM of each image pair; same-sized images are scored as one batch."""
    from facedenoise.metrics import psnr_ssim

    psnr, ssim, start = [], [], 0
    for group in _same_shape_runs(clean):
        stop = start + len(group)
        group_psnr, group_ssim = psnr_ssim(np.stack(group), np.stack(restored[start:stop]))
        psnr.append(group_psnr)
        ssim.append(group_ssim)
        start = stop
    return np.concatenate(psnr), np.concatenate(ssim)


def _progress(show: bool):
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
        TimeRemainingColumn(), console=Console(stderr=True), disable=not show,
    )


def _score_pairs(
    image_pairs: list[tuple[Path, Path]],
    runner: _ModelRunner,
    baselines: list[Baseline],
    noise_factor: float,
    show_progress: bool,
) -> list[MethodScores]:
    """Per-image scores of the input, the model and each baseline, reading in batches."""
    count = len(image_pairs)
    methods = [MethodScores(INPUT, "Noisy input", np.empty(count), np.empty(count)),
               MethodScores(MODEL, "Model", np.empty(count), np.empty(count))]
    methods += [MethodScores(b.name, b.label, np.empty(count), np.empty(count)) for b in baselines]
    seconds = {baseline.name: 0.0 for baseline in baselines}
    for baseline in baselines:
        baseline.warm_up()  # lazy library imports are not part of the timing
    with _progress(show_progress) as progress:
        tasks = {method.name: progress.add_task(method.label, total=count)
                 for method in methods[1:]}
        for start in range(0, count, BATCH_SIZE):
            batch = [_read_pair(*pair) for pair in image_pairs[start:start + BATCH_SIZE]]
            noisy = [pair[0] for pair in batch]
            clean = [pair[1] for pair in batch]
            outputs = {INPUT: noisy, MODEL: runner(noisy)}
            progress.advance(tasks[MODEL], len(batch))
            for baseline in baselines:
                outputs[baseline.name] = []
                for image in noisy:
                    began = time.perf_counter()
                    outputs[baseline.name].append(baseline.run(image, noise_factor))
                    seconds[baseline.name] += time.perf_counter() - began
                    progress.advance(tasks[baseline.name])
            for method in methods:
                psnr, ssim = _scores(clean, outputs[method.name])
                method.psnr[start:start + len(batch)] = psnr
                method.ssim[start:start + len(batch)] = ssim
    methods[1].images_per_second = runner.images_per_second
    for method in methods[2:]:
        method.images_per_second = count / seconds[method.name] if seconds[method.name] else None
    return methods


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


def _examples(
    report: Report,
    image_pairs: list[tuple[Path, Path]],
    runner: _ModelRunner,
    baselines: list[Baseline],
    noise_factor: float,
) -> list[Example]:
    """The images shown in samples.png, denoised again rather than kept in memory: a split
    of thousands of images times every method would not fit, and every method is
    deterministic."""
    examples = []
    for role, index in _example_indices(report.method(MODEL).psnr):
        noisy, clean = _read_pair(*image_pairs[index])
        outputs = {MODEL: runner([noisy], timed=False)[0]}
        for baseline in baselines:
            outputs[baseline.name] = baseline.run(noisy, noise_factor)
        examples.append(Example(role, index, noisy, clean, outputs))
    return examples
