"""An evaluation's results and the files that show them.

`Report` holds per-image PSNR/SSIM for the noisy input, the model and each baseline;
`write_report` turns it into `metrics.json`, `per_image.csv`, `samples.png`, `psnr_gain.png`
and one self-contained `report.html`. Images are float32 RGB in [0, 1] throughout; PSNR is in
dB with max_val 1.0. Matplotlib is used through `Figure` objects (no pyplot, no global backend).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facedenoise.fileio import atomic_path, atomic_write_text

INPUT = "input"
MODEL = "model"
HTML_MAX_ROWS = 50  # per-image rows shown in report.html (the worst first); the CSV has all


@dataclass
class MethodScores:
    """Per-image scores of one method: `psnr` (dB) and `ssim` arrays in image order."""

    name: str  # "input", "model" or a baseline name
    label: str
    psnr: np.ndarray
    ssim: np.ndarray
    images_per_second: float | None = None


@dataclass
class Example:
    """One image shown in samples.png: its pixels and every method's output (float [0, 1])."""

    role: str  # "best", "typical" or "worst" (by the model's PSNR)
    index: int  # position in Report.image_names
    noisy: np.ndarray
    clean: np.ndarray
    outputs: dict[str, np.ndarray]  # method name -> image; the noisy input is not repeated


def _stats(values: np.ndarray) -> dict:
    return {
        "mean": float(np.mean(values)),
        "std": float(np.std(values)),
        "median": float(np.median(values)),
        "min": float(np.min(values)),
        "max": float(np.max(values)),
    }


def _finite(value):
    """JSON has no inf/nan (identical images have infinite PSNR): write them as null."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class Report:
    """The scores of every method on the same images, and where the report files went.

    methods: the noisy input first, then the model, then the baselines.
    info: what was evaluated (split or pairs, model, data, noise factor, machine, ...).
    """

    image_names: list[str]
    methods: list[MethodScores]
    info: dict
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def input(self) -> MethodScores:
        return self.methods[0]

    def method(self, name: str) -> MethodScores:
        return next(method for method in self.methods if method.name == name)

    def ranked(self) -> list[MethodScores]:
        """Methods from the highest mean PSNR to the lowest (the noisy input included)."""
        return sorted(self.methods, key=lambda method: -float(np.mean(method.psnr)))

    def summary(self) -> dict:
        """A JSON-ready dict: info, per-method statistics, ranking and file paths."""
        methods = {}
        for method in self.methods:
            methods[method.name] = {
                "label": method.label,
                "psnr": _stats(method.psnr),
                "ssim": _stats(method.ssim),
                "psnr_gain": float(np.mean(method.psnr - self.input.psnr)),
                "ssim_gain": float(np.mean(method.ssim - self.input.ssim)),
                "images_per_second": method.images_per_second,
            }
        return _finite({
            **self.info,
            "images": len(self.image_names),
            "methods": methods,
            "ranking": [method.name for method in self.ranked()],
            "out_dir": str(self.out_dir),
            "files": {name: str(path) for name, path in self.files.items()},
        })

    def to_json(self) -> str:
        """The summary as indented JSON."""
        return json.dumps(self.summary(), indent=2)

    def table(self):
        """A rich Table ranking the methods by mean PSNR (fits ~110 columns, wraps below)."""
        from rich import box
        from rich.markup import escape
        from rich.table import Table

        what = self.info.get("split") or "pairs"
        table = Table(
            title=f"PSNR (dB) and SSIM on {what}: {len(self.image_names)} images, "
            f"noise factor {self.info.get('noise_factor', '?')}",
            caption=r"mean ± std, median \[min, max]; gain: mean per-image improvement over the "
            f"noisy input; images/s on {escape(str(self.info.get('device', 'this machine')))}",
            box=box.SIMPLE_HEAD,
            padding=(0, 1),
        )
        table.add_column("#", justify="right")
        table.add_column("method", min_width=10)
        for header in ("PSNR", r"median \[min, max]", "SSIM", r"median \[min, max]", "gain dB",
                       "gain SSIM", "images/s"):
            table.add_column(header, justify="right")
        for rank, method in enumerate(self.ranked(), start=1):
            psnr, ssim = _stats(method.psnr), _stats(method.ssim)
            is_input = method.name == INPUT
            speed = method.images_per_second
            label = escape(method.label)
            table.add_row(
                str(rank),
                f"[bold]{label}[/]" if method.name == MODEL else label,
                f"{psnr['mean']:.2f} ± {psnr['std']:.2f}",
                rf"{psnr['median']:.2f} \[{psnr['min']:.1f}, {psnr['max']:.1f}]",
                f"{ssim['mean']:.3f} ± {ssim['std']:.3f}",
                rf"{ssim['median']:.3f} \[{ssim['min']:.2f}, {ssim['max']:.2f}]",
                "" if is_input else f"{np.mean(method.psnr - self.input.psnr):+.2f}",
                "" if is_input else f"{np.mean(method.ssim - self.input.ssim):+.3f}",
                "" if speed is None else _format_speed(speed),
            )
        return table


def _format_speed(images_per_second: float) -> str:
    return f"{images_per_second:.0f}" if images_per_second >= 10 else f"{images_per_second:.2f}"


def write_report(report: Report, examples: list[Example]) -> dict[str, Path]:
    """Write every report file into `report.out_dir`; returns (and records) their paths."""
    out_dir = Path(report.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "per_image.csv": out_dir / "per_image.csv",
        "samples.png": out_dir / "samples.png",
        "psnr_gain.png": out_dir / "psnr_gain.png",
        "report.html": out_dir / "report.html",
        "metrics.json": out_dir / "metrics.json",
    }
    report.files = files
    write_per_image_csv(report, files["per_image.csv"])
    plot_samples(report, examples, files["samples.png"])
    plot_psnr_gain(report, files["psnr_gain.png"])
    write_html(report, files["report.html"])
    atomic_write_text(files["metrics.json"], report.to_json() + "\n")
    return files


def write_per_image_csv(report: Report, path: Path) -> None:
    """One row per image: its name, then PSNR and SSIM of every method."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = ["image"]
    for method in report.methods:
        header += [f"{method.name}_psnr", f"{method.name}_ssim"]
    writer.writerow(header)
    for index, name in enumerate(report.image_names):
        row = [name]
        for method in report.methods:
            row += [f"{method.psnr[index]:.4f}", f"{method.ssim[index]:.5f}"]
        writer.writerow(row)
    atomic_write_text(path, buffer.getvalue())


def _save_figure(figure, path: Path) -> None:
    with atomic_path(path) as temp_path:
        figure.savefig(temp_path, dpi=100, bbox_inches="tight")


def plot_samples(report: Report, examples: list[Example], path: Path) -> None:
    """A grid: one row per example, columns noisy | model | baselines... | clean, with PSNR."""
    from matplotlib.figure import Figure

    columns = ["noisy", *[method.name for method in report.methods[1:]], "clean"]
    labels = {method.name: method.label for method in report.methods}
    rows = max(len(examples), 1)
    figure = Figure(figsize=(2.1 * len(columns), 2.3 * rows), layout="constrained")
    axes = figure.subplots(rows, len(columns), squeeze=False)
    for row, example in enumerate(examples):
        for column, name in enumerate(columns):
            axis = axes[row][column]
            if name == "noisy":
                image, title = example.noisy, f"noisy {report.input.psnr[example.index]:.2f} dB"
            elif name == "clean":
                image, title = example.clean, "clean"
            else:
                psnr = report.method(name).psnr[example.index]
                image, title = example.outputs[name], f"{labels[name]} {psnr:.2f} dB"
            axis.imshow(np.clip(image, 0.0, 1.0), interpolation="nearest")
            axis.set_title(title, fontsize=8)
            axis.set_xticks([])
            axis.set_yticks([])
        axes[row][0].set_ylabel(
            f"{example.role}\n{report.image_names[example.index]}"[:40], fontsize=8
        )
    if not examples:
        for axis in axes[0]:
            axis.set_axis_off()
    _save_figure(figure, path)


def plot_psnr_gain(report: Report, path: Path) -> None:
    """Histogram of per-image PSNR gain (output minus noisy input), one series per method."""
    from matplotlib.figure import Figure

    gains = {method.label: method.psnr - report.input.psnr for method in report.methods[1:]}
    finite = np.concatenate([gain[np.isfinite(gain)] for gain in gains.values()])
    bins = np.histogram_bin_edges(finite if finite.size else [0.0, 1.0], bins=30)
    figure = Figure(figsize=(7.5, 4.0), layout="constrained")
    axis = figure.subplots()
    for label, gain in gains.items():
        gain = gain[np.isfinite(gain)]
        axis.hist(gain, bins=bins, histtype="step", linewidth=1.8,
                  label=f"{label} (mean {np.mean(gain):+.2f} dB)" if gain.size else label)
    axis.axvline(0.0, color="grey", linewidth=0.8, linestyle="--")
    axis.set_xlabel("PSNR gain over the noisy input (dB)")
    axis.set_ylabel("images")
    axis.set_title(f"Per-image PSNR gain, {len(report.image_names)} images")
    axis.legend(fontsize=8)
    _save_figure(figure, path)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1400px; }
table { border-collapse: collapse; margin: 1em 0; font-size: 14px; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th { background: #f0f0f0; } td.name, th.name { text-align: left; }
tr.model td { font-weight: bold; background: #eef6ee; }
img { max-width: 100%; border: 1px solid #ddd; }
dl { display: grid; grid-template-columns: max-content auto; gap: 2px 12px; }
dt { font-weight: bold; } dd { margin: 0; font-family: monospace; }
"""


def _ranking_html(report: Report) -> str:
    summary = report.summary()["methods"]
    head = ("<tr><th>#</th><th class=name>method</th><th>PSNR mean</th><th>std</th>"
            "<th>median</th><th>min</th><th>max</th><th>SSIM mean</th><th>std</th><th>median</th>"
            "<th>min</th><th>max</th><th>gain dB</th><th>gain SSIM</th><th>images/s</th></tr>")
    rows = []
    for rank, method in enumerate(report.ranked(), start=1):
        stats = summary[method.name]
        is_input = method.name == INPUT
        cells = [str(rank), f"<td class=name>{html.escape(method.label)}</td>"]
        for key, digits in (("psnr", 2), ("ssim", 4)):
            cells += [_number(stats[key][stat], digits)
                      for stat in ("mean", "std", "median", "min", "max")]
        cells += ["" if is_input else _number(stats["psnr_gain"], 2, sign=True),
                  "" if is_input else _number(stats["ssim_gain"], 4, sign=True),
                  "" if method.images_per_second is None
                  else _format_speed(method.images_per_second)]
        row_class = " class=model" if method.name == MODEL else ""
        rows.append(f"<tr{row_class}>" + "".join(
            cell if cell.startswith("<td") else f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _number(value, digits: int, sign: bool = False) -> str:
    if value is None:
        return "inf"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def _per_image_html(report: Report) -> str:
    model = report.method(MODEL) if any(m.name == MODEL for m in report.methods) else None
    order = np.argsort(model.psnr if model is not None else report.input.psnr, kind="stable")
    shown = order[:HTML_MAX_ROWS]
    head = "<tr><th class=name>image</th>" + "".join(
        f"<th>{html.escape(m.label)} PSNR</th><th>SSIM</th>" for m in report.methods) + "</tr>"
    rows = []
    for index in shown:
        cells = "".join(f"<td>{m.psnr[index]:.2f}</td><td>{m.ssim[index]:.4f}</td>"
                        for m in report.methods)
        name = html.escape(report.image_names[index])
        rows.append(f"<tr><td class=name>{name}</td>{cells}</tr>")
    note = (f"All {len(order)} images, worst model PSNR first." if len(order) <= HTML_MAX_ROWS
            else f"The {HTML_MAX_ROWS} images with the lowest model PSNR of {len(order)}; "
            "per_image.csv holds all of them.")
    return f"<p>{note}</p><table>{head}{''.join(rows)}</table>"


def write_html(report: Report, path: Path) -> None:
    """One self-contained page (figures embedded as data URIs): info, ranking, figures, rows."""
    info = "".join(
        f"<dt>{html.escape(str(key))}</dt><dd>{html.escape(str(value))}</dd>"
        for key, value in {**report.info, "images": len(report.image_names)}.items()
    )
    what = html.escape(str(report.info.get("split") or "pairs"))
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>facedenoise evaluation: {what}</title><style>{_CSS}</style></head>
<body>
<h1>facedenoise evaluation: {what}</h1>
<dl>{info}</dl>
<h2>Methods ranked by mean PSNR</h2>
<p>PSNR in dB and SSIM on float [0, 1] images (max_val 1.0, tf.image definitions); gain is the
mean per-image improvement over the noisy input.</p>
{_ranking_html(report)}
<h2>Samples: typical, best and worst images (by the model's PSNR)</h2>
<img src="{_data_uri(report.files['samples.png'])}" alt="noisy, denoised and clean samples">
<h2>PSNR gain per image</h2>
<img src="{_data_uri(report.files['psnr_gain.png'])}" alt="histogram of PSNR gains">
<h2>Per-image results</h2>
{_per_image_html(report)}
</body></html>
"""
    atomic_write_text(path, page)
