"""An evaluation's results and the files that show them.

`Report` holds per-image PSNR/SSIM for the noisy input, the model and each baseline on the
fixed noisy files, and optionally a noise sweep (the same methods on the same clean images at
several noise levels). `write_report` turns it into `metrics.json`, `per_image.csv`,
`samples.png`, `psnr_gain.png`, with a sweep `noise_sweep.png` and `sweep_per_image.csv`, and
one self-contained `report.html`. Images are float32 RGB in [0, 1] throughout; PSNR is in dB
with max_val 1.0. Matplotlib is used through `Figure` objects (no pyplot, no global backend).

An output identical to the clean image (noise level 0 fed through unchanged) has an infinite
PSNR. It is kept as inf in memory and in the CSV files ("inf"), written as `null` in JSON
(which has no infinity) next to an `identical_images` count, shown as "inf" in tables, and
drawn as a triangle on the top edge of the PSNR plot.
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
MODEL_GIVEN_LEVEL = "model_given_level"  # a noise-conditional model told the true level
HTML_MAX_ROWS = 50  # per-image rows shown in report.html (the worst first); the CSV has all
STRIP_JITTER = 0.12  # vertical spread of the points in psnr_gain.png, in row heights
PROTOCOL_LEVEL = 0.3  # the mission's noise level, marked in noise_sweep.png
PSNR_CEILING = 60.0  # dB: above this an output is as good as identical; the sweep plot marks it
# matplotlib's cycle without its grey (C7), which is the noisy input's colour
_PALETTE = tuple(f"C{index}" for index in range(10) if index != 7)


@dataclass
class MethodScores:
    """Per-image scores of one method: `psnr` (dB) and `ssim` arrays in image order.

    levels_used: for the model, the noise level it was given or estimated per image (None
    for a model without a noise input and for the baselines).
    """

    name: str  # "input", "model", "model_given_level" or a baseline name
    label: str
    psnr: np.ndarray
    ssim: np.ndarray
    images_per_second: float | None = None
    levels_used: np.ndarray | None = None


@dataclass
class SweepLevel:
    """Every method's per-image scores on the clean images degraded at one noise level."""

    noise_level: float
    methods: list[MethodScores]  # the input first, then the model(s), then the baselines


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
        "std": float(np.std(values)) if np.all(np.isfinite(values)) else math.nan,
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


def _method_summary(method: MethodScores) -> dict:
    summary = {
        "label": method.label,
        "psnr": _stats(method.psnr),
        "ssim": _stats(method.ssim),
        "identical_images": int(np.sum(np.isposinf(method.psnr))),
    }
    if method.levels_used is not None:
        summary["noise_level_used"] = _stats(method.levels_used)
    return summary


@dataclass
class Report:
    """The scores of every method on the same images, and where the report files went.

    methods: the noisy input first, then the model, then the baselines.
    info: what was evaluated (split or pairs, model, data, noise factor, machine, ...).
    sweep: the noise sweep, one entry per level (empty without --noise-levels).
    skipped: {"image": name, "reason": sentence} for every pair that could not be scored.
    """

    image_names: list[str]
    methods: list[MethodScores]
    info: dict
    out_dir: Path
    files: dict[str, Path] = field(default_factory=dict)
    sweep: list[SweepLevel] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)

    @property
    def input(self) -> MethodScores:
        return self.methods[0]

    def method(self, name: str) -> MethodScores:
        return next(method for method in self.methods if method.name == name)

    def ranked(self) -> list[MethodScores]:
        """Methods from the highest mean PSNR to the lowest (the noisy input included)."""
        return sorted(self.methods, key=lambda method: -float(np.mean(method.psnr)))

    def summary(self) -> dict:
        """A JSON-ready dict: info, per-method statistics, ranking, sweep and file paths.

        Non-finite numbers (the PSNR of an output identical to the clean image) are None.
        """
        methods = {}
        for method in self.methods:
            with np.errstate(invalid="ignore"):  # inf - inf for identical pairs: NaN -> None
                psnr_gain = float(np.mean(method.psnr - self.input.psnr))
            methods[method.name] = {
                **_method_summary(method),
                "psnr_gain": psnr_gain,
                "ssim_gain": float(np.mean(method.ssim - self.input.ssim)),
                "images_per_second": method.images_per_second,
            }
        return _finite({
            **self.info,
            "images": len(self.image_names),
            "methods": methods,
            "ranking": [method.name for method in self.ranked()],
            "sweep": [self._sweep_summary(level) for level in self.sweep],
            "skipped": list(self.skipped),
            "out_dir": str(self.out_dir),
            "files": {name: str(path) for name, path in self.files.items()},
        })

    def _sweep_summary(self, level: SweepLevel) -> dict:
        return {
            "noise_level": level.noise_level,
            "images": len(self.image_names),
            "methods": {method.name: _method_summary(method) for method in level.methods},
        }

    def to_json(self) -> str:
        """The summary as indented JSON."""
        return json.dumps(self.summary(), indent=2)


def format_speed(images_per_second: float | None) -> str:
    """Images per second with sensible digits ('' when unknown)."""
    if images_per_second is None:
        return ""
    return f"{images_per_second:.0f}" if images_per_second >= 10 else f"{images_per_second:.2f}"


def format_number(value: float | None, digits: int, sign: bool = False) -> str:
    """A table cell for a summary number: None (a non-finite value in JSON) reads 'inf'."""
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return "inf" if value is None or value > 0 else "-inf"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def write_report(report: Report, examples: list[Example]) -> dict[str, Path]:
    """Write every report file into `report.out_dir`; returns (and records) their paths."""
    out_dir = Path(report.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names = ["per_image.csv", "samples.png", "psnr_gain.png", "report.html", "metrics.json"]
    sweep_names = ["noise_sweep.png", "sweep_per_image.csv"]
    if report.sweep:
        names += sweep_names
    else:  # an earlier run's sweep would sit beside a metrics.json without one
        for name in sweep_names:
            (out_dir / name).unlink(missing_ok=True)
    files = {name: out_dir / name for name in names}
    report.files = files
    write_per_image_csv(report, files["per_image.csv"])
    plot_samples(report, examples, files["samples.png"])
    plot_psnr_gain(report, files["psnr_gain.png"])
    if report.sweep:
        write_sweep_csv(report, files["sweep_per_image.csv"])
        plot_noise_sweep(report, files["noise_sweep.png"])
    write_html(report, files["report.html"])
    atomic_write_text(files["metrics.json"], report.to_json() + "\n")
    return files


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _score_cells(methods: list[MethodScores], index: int) -> list[str]:
    cells = []
    for method in methods:
        cells += [f"{method.psnr[index]:.4f}", f"{method.ssim[index]:.5f}"]
    return cells


def _score_header(methods: list[MethodScores]) -> list[str]:
    return [f"{method.name}_{metric}" for method in methods for metric in ("psnr", "ssim")]


def write_per_image_csv(report: Report, path: Path) -> None:
    """One row per image: its name, then PSNR and SSIM of every method."""
    rows = [[name, *_score_cells(report.methods, index)]
            for index, name in enumerate(report.image_names)]
    _write_csv(path, ["image", *_score_header(report.methods)], rows)


def write_sweep_csv(report: Report, path: Path) -> None:
    """One row per (noise level, image): PSNR and SSIM of every method, and the level the
    model used (given, or estimated with noise level auto)."""
    methods = report.sweep[0].methods
    with_levels = [method.name for method in methods if method.levels_used is not None]
    header = ["noise_level", "image", *_score_header(methods),
              *[f"{name}_level_used" for name in with_levels]]
    rows = []
    for level in report.sweep:
        used = {m.name: m.levels_used for m in level.methods if m.levels_used is not None}
        for index, name in enumerate(report.image_names):
            rows.append([f"{level.noise_level:g}", name, *_score_cells(level.methods, index),
                         *[f"{used[method][index]:.4f}" for method in with_levels]])
    _write_csv(path, header, rows)


def _save_figure(figure, path: Path) -> None:
    with atomic_path(path) as temp_path:
        figure.savefig(temp_path, dpi=100, bbox_inches="tight")


def _sample_cell(report: Report, example: Example, name: str) -> tuple[np.ndarray, str]:
    if name == "noisy":
        return example.noisy, f"noisy {report.input.psnr[example.index]:.2f} dB"
    if name == "clean":
        return example.clean, "clean"
    method = report.method(name)
    return example.outputs[name], f"{method.label} {method.psnr[example.index]:.2f} dB"


def plot_samples(report: Report, examples: list[Example], path: Path) -> None:
    """A grid: one row per example, columns noisy | model | baselines... | clean, with PSNR."""
    from matplotlib.figure import Figure

    columns = ["noisy", *[method.name for method in report.methods[1:]], "clean"]
    rows = max(len(examples), 1)
    figure = Figure(figsize=(2.1 * len(columns), 2.3 * rows), layout="constrained")
    axes = figure.subplots(rows, len(columns), squeeze=False)
    for row, example in enumerate(examples):
        for column, name in enumerate(columns):
            image, title = _sample_cell(report, example, name)
            axis = axes[row][column]
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
    """Per-image PSNR gain over the noisy input: one row per method, a box (quartiles,
    whiskers to 1.5 IQR) with every image as a point, and the mean as a diamond.

    A strip of points stays readable for 5 images as for 5,000 (the points fade as they
    multiply); a histogram of 5 images is mostly empty bins.
    """
    from matplotlib.figure import Figure

    methods = report.methods[1:]
    gains = [method.psnr - report.input.psnr for method in methods]
    gains = [gain[np.isfinite(gain)] for gain in gains]
    figure = Figure(figsize=(7.5, 1.2 + 0.55 * len(methods)), layout="constrained")
    axis = figure.subplots()
    rng = np.random.default_rng(0)  # fixed jitter: the same report draws the same figure
    alpha = float(np.clip(30.0 / max(len(report.image_names), 1), 0.15, 0.8))
    for row, gain in enumerate(gains):
        if not gain.size:
            continue
        axis.boxplot(gain, positions=[row], orientation="horizontal", widths=0.5,
                     showfliers=False, medianprops={"color": "black"})
        jitter = rng.uniform(-STRIP_JITTER, STRIP_JITTER, gain.size)
        color = _method_color(row + 1, methods[row].name)  # as in noise_sweep.png
        axis.scatter(gain, row + jitter, s=14, alpha=alpha, color=color, zorder=3)
        axis.scatter([np.mean(gain)], [row], marker="D", s=40, color="white",
                     edgecolor="black", zorder=4)
    axis.set_yticks(range(len(methods)),
                    [f"{m.label}\nmean {np.mean(g):+.2f} dB" if g.size else m.label
                     for m, g in zip(methods, gains, strict=True)], fontsize=8)
    axis.invert_yaxis()  # the model on top, as in the table
    axis.axvline(0.0, color="grey", linewidth=0.8, linestyle="--")
    axis.set_xlabel("PSNR gain over the noisy input (dB); one point per image, ◆ mean")
    axis.set_title(f"Per-image PSNR gain, {len(report.image_names)} images")
    _save_figure(figure, path)


def _sweep_series(report: Report, metric: str) -> dict[str, tuple[str, np.ndarray]]:
    """method name -> (label, mean `metric` at each sweep level, inf kept)."""
    series = {}
    for position, level in enumerate(report.sweep):
        for method in level.methods:
            label, values = series.setdefault(
                method.name, (method.label, np.full(len(report.sweep), np.nan)))
            values[position] = float(np.mean(getattr(method, metric)))
    return series


def _method_color(position: int, name: str) -> str:
    """The same colour for a method in every figure: the input grey, the others C1, C2, ...
    (skipping matplotlib's own grey)."""
    return "grey" if name == INPUT else _PALETTE[position % len(_PALETTE)]


def _plot_sweep_metric(axis, report: Report, metric: str) -> None:
    levels = np.array([level.noise_level for level in report.sweep])
    series = _sweep_series(report, metric)
    ceiling = PSNR_CEILING if metric == "psnr" else np.inf
    shown = np.concatenate([values[values <= ceiling] for _, values in series.values()])
    top = float(shown.max()) + (2.0 if metric == "psnr" else 0.02) if shown.size else 1.0
    # Values off the scale (identical, or above the ceiling: a 126 dB point would squash every
    # other level into the panel's bottom) share the top edge, triangles spread sideways.
    spread = 0.012 * (levels.max() - levels.min() or 1.0)
    for position, (name, (label, values)) in enumerate(series.items()):
        color = _method_color(position, name)
        axis.plot(levels, np.where(values <= ceiling, values, np.nan), marker="o",
                  markersize=4, label=label, color=color,
                  linestyle="--" if name == INPUT else "-")
        off_scale = values > ceiling
        if off_scale.any():
            offset = (position - (len(series) - 1) / 2) * spread
            axis.plot(levels[off_scale] + offset, np.full(off_scale.sum(), top), linestyle="none",
                      marker="^", markersize=7, clip_on=False, color=color)
    axis.set_ylim(top=top)
    axis.axvline(PROTOCOL_LEVEL, color="grey", linewidth=0.6, linestyle=":")
    axis.set_xticks(levels, [f"{level:g}" for level in levels], fontsize=8)
    axis.set_xlabel("noise level (std on [0, 1])")
    axis.set_ylabel("mean PSNR (dB)" if metric == "psnr" else "mean SSIM")
    axis.grid(alpha=0.3)


def plot_noise_sweep(report: Report, path: Path) -> None:
    """Mean PSNR and SSIM against the noise level, one line per method.

    A triangle on the top edge of the PSNR panel marks a PSNR above PSNR_CEILING or infinite
    (the output is the clean image itself, or as good as: the input at level 0, the baselines,
    which return their input when told there is no noise, and a model that leaves a clean
    image alone). The dotted line marks the mission's level, 0.3.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11.0, 4.2), layout="constrained")
    psnr_axis, ssim_axis = figure.subplots(1, 2)
    _plot_sweep_metric(psnr_axis, report, "psnr")
    _plot_sweep_metric(ssim_axis, report, "ssim")
    psnr_axis.set_title(f"PSNR (▲ on the top edge: above {PSNR_CEILING:g} dB, or identical "
                        "to the clean image)", fontsize=9)
    ssim_axis.set_title("SSIM", fontsize=9)
    ssim_axis.legend(fontsize=8, loc="lower left")
    figure.suptitle(f"Noise sweep: {len(report.image_names)} images, noise seeded per "
                    "(level, image)")
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


def _row(cells: list[str], model: bool = False) -> str:
    """A table row; cells that are already `<td ...>` pass through, others are wrapped."""
    row_class = " class=model" if model else ""
    return f"<tr{row_class}>" + "".join(
        cell if cell.startswith("<td") else f"<td>{cell}</td>" for cell in cells) + "</tr>"


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
            cells += [format_number(stats[key][stat], digits)
                      for stat in ("mean", "std", "median", "min", "max")]
        cells += ["" if is_input else format_number(stats["psnr_gain"], 2, sign=True),
                  "" if is_input else format_number(stats["ssim_gain"], 4, sign=True),
                  format_speed(method.images_per_second)]
        rows.append(_row(cells, model=method.name == MODEL))
    return f"<table>{head}{''.join(rows)}</table>"


def _per_image_html(report: Report) -> str:
    order = np.argsort(report.method(MODEL).psnr, kind="stable")
    head = "<tr><th class=name>image</th>" + "".join(
        f"<th>{html.escape(m.label)} PSNR</th><th>SSIM</th>" for m in report.methods) + "</tr>"
    rows = []
    for index in order[:HTML_MAX_ROWS]:
        cells = "".join(f"<td>{m.psnr[index]:.2f}</td><td>{m.ssim[index]:.4f}</td>"
                        for m in report.methods)
        name = html.escape(report.image_names[index])
        rows.append(f"<tr><td class=name>{name}</td>{cells}</tr>")
    note = (f"All {len(order)} images, worst model PSNR first." if len(order) <= HTML_MAX_ROWS
            else f"The {HTML_MAX_ROWS} images with the lowest model PSNR of {len(order)}; "
            "per_image.csv holds all of them.")
    return f"<p>{note}</p><table>{head}{''.join(rows)}</table>"


def sweep_table(report: Report, metric: str) -> tuple[list[str], list[tuple[str, str, list]]]:
    """The sweep as plain rows: (level headers, [(method name, label, mean per level)]).

    Means are floats, with math.inf for an output identical to the clean image.
    """
    headers = [f"{level.noise_level:g}" for level in report.sweep]
    rows = [(name, label, list(values))
            for name, (label, values) in _sweep_series(report, metric).items()]
    return headers, rows


def _sweep_html(report: Report) -> str:
    if not report.sweep:
        return ""
    tables = []
    for metric, digits in (("psnr", 2), ("ssim", 4)):
        headers, rows = sweep_table(report, metric)
        head = (f"<tr><th class=name>mean {metric.upper()} at level</th>"
                + "".join(f"<th>{header}</th>" for header in headers) + "</tr>")
        body = "".join(
            _row([f"<td class=name>{html.escape(label)}</td>",
                  *[format_number(float(v), digits) for v in values]], model=name == MODEL)
            for name, label, values in rows)
        tables.append(f"<table>{head}{body}</table>")
    seed = html.escape(str(report.info.get("sweep_seed", "")))
    return f"""<h2>Noise sweep</h2>
<p>The same {len(report.image_names)} clean images at each noise level: noise
clip(clean + level &times; N(0, 1), 0, 1), rounded to 8 bits, seeded per (level, image) with
seed {seed}. At level 0 the input is the clean image itself. The model runs with noise level
auto (estimated per image, as <code>facedenoise denoise</code> does) and, if it has a noise
input, told the true level; the baselines are told the true level (and return their input at
level 0). "inf": the output equals the clean image (infinite PSNR).</p>
{''.join(tables)}
<img src="{_data_uri(report.files['noise_sweep.png'])}" alt="PSNR and SSIM against noise level">
"""


def _skipped_html(report: Report) -> str:
    if not report.skipped:
        return ""
    items = "".join(f"<li><code>{html.escape(item['image'])}</code>: "
                    f"{html.escape(item['reason'])}</li>" for item in report.skipped)
    return f"<h2>Skipped pairs ({len(report.skipped)})</h2><ul>{items}</ul>"


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
<img src="{_data_uri(report.files['psnr_gain.png'])}" alt="PSNR gain of every image">
{_sweep_html(report)}
<h2>Per-image results</h2>
{_per_image_html(report)}
{_skipped_html(report)}
</body></html>
"""
    atomic_write_text(path, page)
