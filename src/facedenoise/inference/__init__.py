"""Denoise photos of any size with a trained model: pad, tile, blend, batch.

One job per module:
- `tiling`: the tiling arithmetic (evenly spread tiles, blending windows, band streaming),
  pure NumPy around any `predict(batch) -> batch`;
- `levels`: checking a requested noise level, estimating one per image;
- `runtimes`: running a model through Keras or ONNX Runtime behind one interface;
- `ensemble`: a model call averaged over flips and rotations (`--ensemble`);
- `chroma`: the chroma stage after the model, a luma-guided filter on colour steered by the
  noise level (`--no-chroma-filter` turns it off);
- `denoiser`: the `Denoiser` (arrays of any layout, size and sample type);
- `planning`: pairing inputs with outputs like `cp`, with every safety check;
- `files`: `denoise_paths`, the core of `facedenoise denoise`, with threaded I/O.

Every pixel array crossing these functions is float32 RGB in [0, 1] unless a docstring says
otherwise; conversions from stored 8/16-bit samples happen in `facedenoise.imageio`.
Importing this package does not import TensorFlow.
"""

from facedenoise.inference.denoiser import Denoiser, check_config
from facedenoise.inference.files import DenoiseSummary, FileResult, denoise_paths
from facedenoise.inference.levels import auto_level, check_noise_level, estimate_level
from facedenoise.inference.planning import Job, check_suffix, plan_jobs
from facedenoise.inference.runtimes import KerasRuntime, OnnxRuntime
from facedenoise.inference.tiling import (
    blend_weights,
    denoise_tiled,
    denoise_tiled_rows,
    pad_edges,
    tile_starts,
)

__all__ = [
    "Denoiser",
    "DenoiseSummary",
    "FileResult",
    "Job",
    "KerasRuntime",
    "OnnxRuntime",
    "auto_level",
    "blend_weights",
    "check_config",
    "check_noise_level",
    "check_suffix",
    "denoise_paths",
    "denoise_tiled",
    "denoise_tiled_rows",
    "estimate_level",
    "pad_edges",
    "plan_jobs",
    "tile_starts",
]
