"""Raw faces (folder, .zip, .tar[.gz] or the bundled sample) -> split dataset + manifest.

The protocol: list every image in the source, sort by relative path, shuffle with the seed, and
walk that order taking usable, not-yet-seen images until `count` are selected. Test takes
`test_fraction` of the selection, validation `val_fraction` of the rest, train the remainder.
Each image is decoded, centre-cropped to a square, resized to `size` and written as 8-bit RGB
PNG; validation and test images also get a fixed noisy copy seeded by (seed, id).

Work is streamed through a process pool: a worker reads, hashes and decodes one candidate and
stages its clean PNG; the main process, consuming results in seeded order, decides its id and
split, renames the staged file into place and asks a worker for the noisy copy. Memory is
bounded by the number of images in flight and by the limits on one file (config.MAX_FILE_BYTES,
PrepareConfig.max_pixels), whatever the dataset size.

Every output file is written atomically. A journal beside the outputs records each finished
image, so an interrupted run resumes; a finished run leaves only `manifest.json`, and running
it again verifies the files against their hashes instead of redoing the work.

The modules, one job each: `sources` (listing and reading folders, zips, tars, the sample),
`worker` (examining and encoding one image), `pool` (the worker processes), `split` (order and
splits), `journal` (resume and --force), `manifest` (the result) and `run` (one run).
"""

from facedenoise.prepare.journal import JOURNAL_NAME
from facedenoise.prepare.manifest import Manifest
from facedenoise.prepare.run import prepare
from facedenoise.prepare.sources import SAMPLE_SOURCE, open_source, sample_folder
from facedenoise.prepare.split import id_width, seeded_order, split_of
from facedenoise.prepare.worker import STAGING_NAME, clean_image, encode_png

__all__ = [
    "JOURNAL_NAME",
    "SAMPLE_SOURCE",
    "STAGING_NAME",
    "Manifest",
    "clean_image",
    "encode_png",
    "id_width",
    "open_source",
    "prepare",
    "sample_folder",
    "seeded_order",
    "split_of",
]
