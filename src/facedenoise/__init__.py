"""facedenoise: train and run a U-Net that removes Gaussian noise from photographs of faces.

Importing the package is cheap: TensorFlow loads only when a model is built or loaded.
"""

__version__ = "0.2.0"

__all__ = ["Denoiser", "FaceDenoiseError", "__version__"]


def __getattr__(name):
    # Lazy so that `import facedenoise` (and the CLI's --help) never imports TensorFlow.
    if name == "Denoiser":
        from facedenoise.inference import Denoiser

        return Denoiser
    if name == "FaceDenoiseError":
        from facedenoise.errors import FaceDenoiseError

        return FaceDenoiseError
    raise AttributeError(f"module 'facedenoise' has no attribute {name!r}")
