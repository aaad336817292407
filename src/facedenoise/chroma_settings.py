"""The chroma stage's settings, shared by the stage (`facedenoise.inference.chroma`) and its
differentiable copy for training (`facedenoise.chroma_loss`).

A leaf module (NumPy only), so that training does not import the inference package.
"""

from __future__ import annotations

import numpy as np

LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601
# The guided filter's regulariser, in luma variance ((0.03)^2): windows whose luma varies
# less than this are treated as flat and their colour averaged.
GUIDE_EPSILON = 1e-3
# (lowest level, radius in pixels): chosen on the sample's training faces and crops of the
# training photos (a first pass also used the val faces, which bench_user scores; never the
# test faces or held-out photos); below the first level the stage is off.
RADIUS_BY_LEVEL = ((0.03, 1), (0.09, 2), (0.15, 4))
