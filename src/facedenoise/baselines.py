"""Classical denoisers to compare the model with: a registry name -> Baseline.

Every baseline maps a noisy float32 RGB image (H, W, 3) in [0, 1] and the noise factor it
should assume (the std of the Gaussian noise on [0, 1], before clipping) to a denoised float32
RGB image in [0, 1] of the same shape.

The parameters were tuned once, for noise factor 0.3, by a grid search on a handful of the
bundled faces (benchmarks/bench_baselines.py; grid and numbers in docs/baselines.md). Each
sigma-dependent parameter is stored relative to the noise factor and scaled with it, so other
noise levels get proportionally stronger or weaker smoothing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from facedenoise.errors import FaceDenoiseError

TUNED_NOISE_FACTOR = 0.3

# Tuned values at noise factor 0.3 (see docs/baselines.md for the grid and the scores).
GAUSSIAN_BLUR_SIGMA = 1.5  # pixels; the optimum grows with the noise (~ linear in the factor)
NLM_H_PER_SIGMA = 0.55  # OpenCV's luminance filter strength h, in units of the 8-bit noise std
NLM_H_COLOR_PER_SIGMA = 0.55  # same for the chroma channels
NLM_TEMPLATE_WINDOW = 7  # OpenCV's recommended patch and search sizes
NLM_SEARCH_WINDOW = 21
TV_WEIGHT_PER_SIGMA = 0.67  # scikit-image Chambolle weight / noise factor (0.2 at 0.3)
WAVELET_NAME = "db2"
WAVELET_METHOD = "BayesShrink"
WAVELET_SIGMA_SCALE = 1.0  # sigma passed to denoise_wavelet / noise factor
BM3D_SIGMA_SCALE = 0.9  # sigma_psd / noise factor: clipping makes the real noise a bit weaker


def _scale(noise_factor: float) -> float:
    return noise_factor / TUNED_NOISE_FACTOR


# Each function takes its tuned parameters as keyword arguments so that the tuning script can
# call the very code that the evaluation runs.


def gaussian_blur(
    noisy: np.ndarray, noise_factor: float, *, blur_sigma: float = GAUSSIAN_BLUR_SIGMA
) -> np.ndarray:
    """OpenCV Gaussian blur; `blur_sigma` (pixels, at noise factor 0.3) grows with the noise."""
    import cv2

    sigma = blur_sigma * _scale(noise_factor)
    return cv2.GaussianBlur(noisy, (0, 0), sigmaX=sigma, sigmaY=sigma,
                            borderType=cv2.BORDER_REFLECT_101)


def non_local_means(
    noisy: np.ndarray,
    noise_factor: float,
    *,
    h_per_sigma: float = NLM_H_PER_SIGMA,
    h_color_per_sigma: float = NLM_H_COLOR_PER_SIGMA,
) -> np.ndarray:
    """OpenCV's fast non-local means for colour images (8-bit, luminance and chroma apart)."""
    import cv2

    sigma_8bit = noise_factor * 255.0
    noisy_8bit = np.rint(np.clip(noisy, 0.0, 1.0) * 255.0).astype(np.uint8)
    denoised = cv2.fastNlMeansDenoisingColored(
        noisy_8bit, None,
        h=h_per_sigma * sigma_8bit,
        hColor=h_color_per_sigma * sigma_8bit,
        templateWindowSize=NLM_TEMPLATE_WINDOW,
        searchWindowSize=NLM_SEARCH_WINDOW,
    )
    return denoised.astype(np.float32) / 255.0


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
) -> np.ndarray:
    """scikit-image's wavelet soft shrinkage in YCbCr, told the noise level."""
    from skimage.restoration import denoise_wavelet

    return denoise_wavelet(
        noisy,
        sigma=sigma_scale * noise_factor,
        wavelet=name,
        mode="soft",
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

    `needs` names a module that must be importable (an optional extra) or is None.
    """

    name: str
    label: str
    library: str
    function: Callable[[np.ndarray, float], np.ndarray]
    needs: str | None = None

    def run(self, noisy: np.ndarray, noise_factor: float) -> np.ndarray:
        """Denoise one float32 RGB image (H, W, 3) in [0, 1]; returns float32 in [0, 1]."""
        denoised = self.function(np.asarray(noisy, np.float32), float(noise_factor))
        return np.clip(denoised, 0.0, 1.0).astype(np.float32)


BASELINES: dict[str, Baseline] = {
    baseline.name: baseline
    for baseline in (
        Baseline("gaussian", "Gaussian blur", "OpenCV", gaussian_blur),
        Baseline("nlm", "Non-local means", "OpenCV", non_local_means),
        Baseline("tv", "Total variation", "scikit-image", total_variation),
        Baseline("wavelet", "Wavelet (BayesShrink)", "scikit-image", wavelet),
        Baseline("bm3d", "BM3D", "bm3d", bm3d_rgb, needs="bm3d"),
    )
}


def parse_baselines(spec: str | None) -> list[Baseline]:
    """The baselines named by a comma-separated list ('nlm,tv'), 'all', or ''/None (none).

    Raises FaceDenoiseError for unknown names, and for bm3d when its package is missing.
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
                f"The '{baseline.name}' baseline needs the optional '{baseline.needs}' package: "
                f"pip install 'facedenoise[{baseline.needs}]' (or leave {baseline.name} out of "
                "--baselines)."
            )
    return chosen
