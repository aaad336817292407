"""Classical denoisers to compare the model with: a registry name -> Baseline.

Every baseline maps a noisy float32 RGB image (H, W, 3) in [0, 1] and the noise factor it
should assume (the std of the Gaussian noise on [0, 1], before clipping) to a denoised float32
RGB image in [0, 1] of the same shape.

The parameters were tuned once, for noise factor 0.3, by a grid search on a handful of the
bundled faces (benchmarks/bench_baselines.py; grid and numbers in docs/baselines.md). Each
sigma-dependent parameter is stored relative to the noise factor and scaled with it (the blur
width with its square root), so other noise levels get stronger or weaker smoothing; the
docs give the price of that scaling against retuning at factors 0.15 and 0.5.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facedenoise.errors import FaceDenoiseError

TUNED_NOISE_FACTOR = 0.3
WARM_UP_SIZE = 32  # pixels: enough for every method, cheap even for BM3D

# Tuned values at noise factor 0.3 (see docs/baselines.md for the grid and the scores).
GAUSSIAN_BLUR_SIGMA = 1.7  # pixels; the optimum grows like the square root of the factor
NLM_H_PER_SIGMA = 0.15  # scikit-image's h / sigma
NLM_SIGMA_SCALE = 1.0  # sigma passed to denoise_nl_means / noise factor
NLM_PATCH_SIZE = 5  # pixels; patches and search area are spatial, so they do not scale
NLM_PATCH_DISTANCE = 4
TV_WEIGHT_PER_SIGMA = 1.0  # scikit-image Chambolle weight / noise factor
WAVELET_NAME = "sym4"
WAVELET_METHOD = "BayesShrink"
WAVELET_SIGMA_SCALE = 0.85  # sigma passed to denoise_wavelet / noise factor
WAVELET_LEVELS = 4  # scikit-image's default (3 below the deepest possible) is 1 for sym4 at 128 px
BM3D_SIGMA_SCALE = 0.85  # sigma_psd / noise factor: clipping makes the real noise a bit weaker


def _scale(noise_factor: float) -> float:
    return noise_factor / TUNED_NOISE_FACTOR


# Each function takes its tuned parameters as keyword arguments so that the tuning script can
# call the very code that the evaluation runs.


def gaussian_blur(
    noisy: np.ndarray, noise_factor: float, *, blur_sigma: float = GAUSSIAN_BLUR_SIGMA
) -> np.ndarray:
    """OpenCV Gaussian blur; `blur_sigma` (pixels, at noise factor 0.3) grows with the noise.

    Square-root growth: the best width measured at factors 0.15, 0.3 and 0.5 was about
    1.1, 1.6 and 2.0 pixels (docs/baselines.md); linear growth oversmooths strong noise.
    """
    import cv2

    sigma = blur_sigma * _scale(noise_factor) ** 0.5
    return cv2.GaussianBlur(noisy, (0, 0), sigmaX=sigma, sigmaY=sigma,
                            borderType=cv2.BORDER_REFLECT_101)


def non_local_means(
    noisy: np.ndarray,
    noise_factor: float,
    *,
    h_per_sigma: float = NLM_H_PER_SIGMA,
    sigma_scale: float = NLM_SIGMA_SCALE,
    patch_size: int = NLM_PATCH_SIZE,
    patch_distance: int = NLM_PATCH_DISTANCE,
) -> np.ndarray:
    """scikit-image's non-local means, told the noise level so that it subtracts the noise's
    share of every patch distance (OpenCV's version cannot, and scored 1 dB lower)."""
    from skimage.restoration import denoise_nl_means

    sigma = sigma_scale * noise_factor
    return denoise_nl_means(
        noisy, h=h_per_sigma * sigma, sigma=sigma, patch_size=patch_size,
        patch_distance=patch_distance, fast_mode=True, channel_axis=-1,
    )


def total_variation(
    noisy: np.ndarray, noise_factor: float, *, weight_per_sigma: float = TV_WEIGHT_PER_SIGMA
) -> np.ndarray:
    """scikit-image's Chambolle total-variation denoising, weight proportional to the noise."""
    from skimage.restoration import denoise_tv_chambolle

    return denoise_tv_chambolle(noisy, weight=weight_per_sigma * noise_factor, channel_axis=-1)


def wavelet(
    noisy: np.ndarray,
    noise_factor: float,
    *,
    name: str = WAVELET_NAME,
    method: str = WAVELET_METHOD,
    sigma_scale: float = WAVELET_SIGMA_SCALE,
    levels: int | None = WAVELET_LEVELS,
) -> np.ndarray:
    """scikit-image's wavelet soft shrinkage in YCbCr, told the noise level.

    `levels` is capped at the deepest decomposition the image holds, so small images get
    fewer levels instead of pywt's boundary-effect warning.
    """
    import pywt
    from skimage.restoration import denoise_wavelet

    if levels is not None:
        deepest = pywt.dwt_max_level(min(noisy.shape[:2]), pywt.Wavelet(name).dec_len)
        levels = max(1, min(levels, deepest))
    return denoise_wavelet(
        noisy,
        sigma=sigma_scale * noise_factor,
        wavelet=name,
        mode="soft",
        wavelet_levels=levels,
        method=method,
        convert2ycbcr=True,
        rescale_sigma=True,
        channel_axis=-1,
    )


def bm3d_rgb(
    noisy: np.ndarray, noise_factor: float, *, sigma_scale: float = BM3D_SIGMA_SCALE
) -> np.ndarray:
    """BM3D (the `bm3d` package, an optional extra) in its opponent colour space."""
    import bm3d

    return bm3d.bm3d_rgb(noisy, sigma_psd=sigma_scale * noise_factor)


@dataclass(frozen=True)
class Baseline:
    """A classical denoiser: `run(noisy, noise_factor)` on float32 RGB in [0, 1].

    `needs` names a module that must be importable, and `install` how to get it.
    """

    name: str
    label: str
    library: str
    function: Callable[[np.ndarray, float], np.ndarray]
    needs: str | None = None
    install: str = ""

    def warm_up(self) -> None:
        """Run once on a small image: the libraries import lazily (scikit-image loads its
        restoration code on first use, ~0.7 s), which timing should leave out."""
        rng = np.random.default_rng(0)
        self.run(rng.uniform(size=(WARM_UP_SIZE, WARM_UP_SIZE, 3)), TUNED_NOISE_FACTOR)

    def run(self, noisy: np.ndarray, noise_factor: float) -> np.ndarray:
        """Denoise one float32 RGB image (H, W, 3) in [0, 1]; returns float32 in [0, 1].

        Told that there is no noise (`noise_factor` 0), every baseline returns its input:
        each one's smoothing shrinks to nothing as the level falls, and at 0 some libraries
        would divide by it.
        """
        if noise_factor <= 0:
            return np.clip(np.asarray(noisy, np.float32), 0.0, 1.0)
        denoised = self.function(np.asarray(noisy, np.float32), float(noise_factor))
        return np.clip(denoised, 0.0, 1.0).astype(np.float32)


BASELINES: dict[str, Baseline] = {
    baseline.name: baseline
    for baseline in (
        Baseline("gaussian", "Gaussian blur", "OpenCV", gaussian_blur),
        Baseline("nlm", "Non-local means", "scikit-image", non_local_means),
        Baseline("tv", "Total variation", "scikit-image", total_variation),
        # scikit-image's wavelet code needs PyWavelets, which scikit-image does not install.
        Baseline("wavelet", "Wavelet (BayesShrink)", "scikit-image", wavelet,
                 needs="pywt", install="pip install PyWavelets"),
        Baseline("bm3d", "BM3D", "bm3d", bm3d_rgb,
                 needs="bm3d", install="pip install 'facedenoise[bm3d]'"),
    )
}


def parse_baselines(spec: str | None) -> list[Baseline]:
    """The baselines named by a comma-separated list ('nlm,tv'), 'all', or ''/None (none).

    Raises FaceDenoiseError for unknown names, and when a needed package (bm3d, pywt) is missing.
    """
    names = [name.strip().lower() for name in (spec or "").split(",") if name.strip()]
    if "all" in names:
        names = list(BASELINES)
    unknown = [name for name in names if name not in BASELINES]
    if unknown:
        raise FaceDenoiseError(
            f"Unknown baseline '{unknown[0]}'; choose from {', '.join(BASELINES)} or 'all'."
        )
    chosen = [BASELINES[name] for name in dict.fromkeys(names)]
    for baseline in chosen:
        if baseline.needs and importlib.util.find_spec(baseline.needs) is None:
            raise FaceDenoiseError(
                f"The '{baseline.name}' baseline needs the '{baseline.needs}' package: "
                f"{baseline.install} (or leave {baseline.name} out of --baselines)."
            )
    return chosen
