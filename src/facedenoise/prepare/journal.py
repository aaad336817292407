"""State on disk between runs: the journal of finished images, what an earlier run left in
--out, and the rules for resuming, verifying and replacing it (--force).

A journal beside the outputs records each finished image, so an interrupted run resumes; a
finished run leaves only `manifest.json`, and running it again verifies the files against
their hashes instead of redoing the work.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from facedenoise import __version__
from facedenoise.config import PrepareConfig, to_dict
from facedenoise.dataset import (
    MANIFEST_NAME,
    NOISY_SPLITS,
    SPLITS,
    clean_path,
    is_safe_id,
    load_manifest,
    noisy_path,
)
from facedenoise.errors import FaceDenoiseError
from facedenoise.fileio import atomic_write_text

JOURNAL_NAME = ".prepare-journal.jsonl"  # a header line (settings), then one line per image
# Settings that bound resources, not the dataset: changing them never makes --out foreign.
_NOT_RECORDED = ("max_pixels",)


@dataclass
class Previous:
    """What earlier runs left in --out."""

    records: dict[str, dict] = field(default_factory=dict)  # source name -> reusable record
    outputs: set[Path] = field(default_factory=set)  # every file earlier runs wrote


def settings_header(source_label: str, config: PrepareConfig) -> dict:
    """The settings a dataset is prepared with: the journal's first line, the manifest's head."""
    params = {key: value for key, value in to_dict(config).items() if key not in _NOT_RECORDED}
    return {"version": __version__, "source": source_label, "params": params}


def _read_journal(path: Path) -> tuple[dict | None, list[dict]]:
    """The header and records of a journal; a line cut short by a kill is ignored."""
    header, records = None, []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None, []
    for number, line in enumerate(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if number == 0:
            header = entry if isinstance(entry, dict) else None
        elif isinstance(entry, dict):
            records.append(entry)
    return header, records


def _valid_record(record: object) -> bool:
    keys = ("id", "split", "source", "source_sha256", "sha256")
    return (
        isinstance(record, dict)
        and all(isinstance(record.get(key), str) for key in keys)
        and is_safe_id(record["id"])
        and record["split"] in SPLITS
        and (record["split"] not in NOISY_SPLITS or isinstance(record.get("noisy_sha256"), str))
    )


def output_paths(out: Path, record: dict) -> list[Path]:
    paths = [clean_path(out, record["split"], record["id"])]
    if record["split"] in NOISY_SPLITS:
        paths.append(noisy_path(out, record["split"], record["id"]))
    return paths


def _describe_change(before: dict, now: dict) -> str:
    changes = (
        [f"source {before.get('source')} -> {now['source']}"]
        if (before.get("source") != now["source"])
        else []
    )
    old_params = before.get("params") if isinstance(before.get("params"), dict) else {}
    changes += [
        f"{key} {old_params.get(key)} -> {value}"
        for key, value in now["params"].items()
        if old_params.get(key) != value
    ]
    return ", ".join(changes) or "unreadable settings"


def load_previous(out: Path, header: dict, force: bool) -> Previous:
    """What earlier runs left in `out`; refuses (FaceDenoiseError) to mix in other settings.

    With `force`, the files an earlier run with other settings wrote are deleted first; files
    prepare did not write are never touched.
    """
    journal_path, manifest_path = out / JOURNAL_NAME, out / MANIFEST_NAME
    if not journal_path.exists() and not manifest_path.exists():
        _refuse_foreign(out, force)
        return Previous()
    journal_header, journal_records = _read_journal(journal_path)
    manifest = _read_manifest(out) if manifest_path.exists() else {}
    # An unfinished run is the authority on what `out` is being prepared for.
    before = (journal_header or {}) if journal_path.exists() else manifest
    manifest_records = manifest.get("images") if isinstance(manifest.get("images"), list) else []
    written = [r for r in manifest_records + journal_records if _valid_record(r)]
    outputs = {path for record in written for path in output_paths(out, record)}
    if not _same(before, header):
        if not force:
            raise FaceDenoiseError(
                f"{out} holds a dataset prepared with other settings "
                f"({_describe_change(before, header)}); pass --force to replace it, or choose "
                "another --out."
            )
        _remove_earlier_run(out, outputs)
        return Previous()
    reusable = [r for r in manifest_records if _reusable_from(manifest, header)]
    reusable += journal_records if _reusable_from(journal_header, header) else []
    # Later entries win: the journal's over the manifest's, a record over an older one.
    records = {record["source"]: record for record in reusable if _valid_record(record)}
    return Previous(records, outputs)


def _read_manifest(out: Path) -> dict:
    """The manifest in `out`, or {} when it is unreadable (treated as other settings)."""
    try:
        return load_manifest(out)
    except FaceDenoiseError:
        return {}


def _reusable_from(before: dict | None, header: dict) -> bool:
    """Files recorded under these exact settings, by this very version, can be reused."""
    return _same(before, header) and before.get("version") == header["version"]


def _same(before: dict | None, header: dict) -> bool:
    return (
        isinstance(before, dict)
        and before.get("source") == header["source"]
        and (before.get("params") == header["params"])
    )


def _refuse_foreign(out: Path, force: bool) -> None:
    """Refuse an --out whose clean/ or noisy/ folders prepare did not write (unless --force)."""
    foreign = [name for name in ("clean", "noisy") if (out / name).exists()]
    if foreign and not force:
        raise FaceDenoiseError(
            f"{out} already has {' and '.join(foreign)}/ folders that facedenoise prepare did "
            "not record; choose another --out, or pass --force to write into it (files with "
            "other names are left alone)."
        )


def _remove_earlier_run(out: Path, outputs: set[Path]) -> None:
    for path in outputs:
        path.unlink(missing_ok=True)
    (out / MANIFEST_NAME).unlink(missing_ok=True)
    (out / JOURNAL_NAME).unlink(missing_ok=True)


class Journal:
    """Append-only record of finished images, so that an interrupted run can resume."""

    def __init__(self, path: Path, header: dict):
        if not path.exists():
            atomic_write_text(path, json.dumps(header) + "\n")
        self.path = path
        ends_cleanly = path.read_bytes().endswith(b"\n")
        self._handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())
        if not ends_cleanly:  # a kill cut the last line short: start on a fresh one
            self._handle.write("\n")

    def append(self, record: dict) -> None:
        self._handle.write(json.dumps(record) + "\n")
        self._handle.flush()  # a kill loses at most the line being written

    def close(self) -> None:
        self._handle.close()
