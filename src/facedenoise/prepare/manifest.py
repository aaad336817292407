"""The result of a run: `manifest.json` (its layout is in `facedenoise.dataset`) and the
`Manifest` that `prepare` returns."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from facedenoise.dataset import MANIFEST_NAME, NOISY_SPLITS, SPLITS
from facedenoise.errors import FaceDenoiseError
from facedenoise.fileio import atomic_write_text
from facedenoise.prepare.journal import JOURNAL_NAME, Previous, output_paths

DUPLICATE = "duplicate"  # a skip kind: byte-identical to an image selected before it


@dataclass
class Manifest:
    """A prepared dataset: the parsed `manifest.json` and how this run went.

    path: the manifest file. data: its content (see the module docstring of `dataset`).
    reused: images verified from an earlier run instead of being written again.
    seconds: wall time of the run.
    """

    path: Path
    data: dict
    reused: int = 0
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        return self.data["counts"]

    @property
    def skipped(self) -> list[dict]:
        """{"source", "reason", "kind"} per skipped file; kind is one word to group by
        ("unreadable", "empty", "too_small", "too_large", "duplicate", "not_a_regular_file")."""
        return self.data["skipped"]

    @property
    def images(self) -> list[dict]:
        return self.data["images"]

    @property
    def shortfall(self) -> str | None:
        """A sentence when the source held fewer usable images than `count` asked for."""
        requested = self.data["params"]["count"]
        selected = len(self.images)
        if requested is None or selected >= requested:
            return None
        return f"only {selected:,} usable images in the source; --count asked for {requested:,}"


def image_record(
    image_id: str,
    split: str,
    source: str,
    source_sha256: str,
    sha256: str,
    noisy_sha256: str | None = None,
) -> dict:
    """A manifest image entry, keys always in the same order (byte-identical manifests)."""
    record = {
        "id": image_id,
        "split": split,
        "source": source,
        "source_sha256": source_sha256,
        "sha256": sha256,
    }
    if split in NOISY_SPLITS:
        record["noisy_sha256"] = noisy_sha256
    return record


def skip_record(source: str, kind: str, reason: str) -> dict:
    """A manifest entry for a skipped file, keys always in the same order."""
    return {"source": source, "reason": reason, "kind": kind}


def write_manifest(
    out: Path,
    header: dict,
    candidates: int,
    images: list[dict],
    skipped: list[dict],
    previous: Previous,
) -> Manifest:
    """Write `manifest.json`, delete what earlier runs wrote under ids no longer used, and end
    the journal (the manifest now says everything it said)."""
    images = sorted(images, key=lambda record: record["id"])
    counts = {split: sum(record["split"] == split for record in images) for split in SPLITS}
    data = {**header, "candidates": candidates, "counts": counts, "images": images}
    data["skipped"] = skipped
    # Files an earlier run wrote under ids this run no longer uses would look like data.
    current = {path for record in images for path in output_paths(out, record)}
    for path in previous.outputs - current:
        path.unlink(missing_ok=True)
    atomic_write_text(out / MANIFEST_NAME, json.dumps(data, indent=1) + "\n")
    (out / JOURNAL_NAME).unlink(missing_ok=True)
    return Manifest(out / MANIFEST_NAME, data)


def no_usable_images(label: str, skipped: list[dict]) -> FaceDenoiseError:
    """The error for a source whose every candidate was skipped."""
    reasons = sorted({entry["reason"] for entry in skipped})
    return FaceDenoiseError(
        f"No usable image in {label}: all {len(skipped)} candidate(s) were skipped "
        f"({'; '.join(reasons[:3])}); check --source, or --allow-upscale for small images."
    )
