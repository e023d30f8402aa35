"""A comparison report of git revisions, branches, tags or DVC experiments.

    python -m pipeline.commands.compare REV [REV ...] [--out DIR]   (or: make compare REVS="main my-branch")

Writes DIR (default compare/) with index.md: the params that differ, every metric
of the declared metrics files with its change from the first revision, and every
plot declared in dvc.yaml, data plots rendered offline to PNG with the revisions
overlaid (from DVC's own Vega-Lite specs, `dvc plots diff --json`), image plots
side by side. A file a revision lacks (not committed then, or a DVC output not in
the cache) is named in index.md and on stderr instead of stopping the report.
`workspace` is the working tree, as in DVC.

The folder is built beside DIR and renamed into place at the end, replacing a
previous report whole; a bad revision or an unwritable DIR leaves nothing.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline import files, limits, markdown
from pipeline.cli import UserError, run
from pipeline.params import is_number

DEFAULT_OUT = Path("compare")
INDEX = "index.md"
# The first line of every index.md written here: a folder is replaced only if it has it.
MARKER = "<!-- written by python -m pipeline.commands.compare; replaced whole by its next run -->"
SCALE = 2  # PNG pixels per Vega-Lite pixel
ABSENT = "—"
MISSING_SHOWN = 4  # files named on stderr; index.md lists them all


@dataclass(frozen=True)
class Missing:
    """A file a revision lacks, and what needed it."""

    rev: str
    path: str
    needed_for: str
    reason: str


# ---------------------------------------------------------------- pure functions


def flatten(tree: Mapping, prefix: str = "") -> dict[str, object]:
    """{"test": {"accuracy": 0.9}} -> {"test.accuracy": 0.9}; lists stay values."""
    flat: dict[str, object] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def format_value(value: object) -> str:
    if value is None:
        return ABSENT
    if isinstance(value, str):
        return value
    return json.dumps(value)  # true/false, [1, 2], numbers as written


def format_change(old: object, new: object) -> str:
    if not (is_number(old) and is_number(new)):
        return ""
    change = new - old
    if change == 0:
        return "0"
    if isinstance(change, int):
        return f"{change:+d}"
    return f"{change:+.6g}"


def code(text: str) -> str:
    return f"`{text}`"


def keys_in_order(per_rev: Mapping[str, Mapping[str, object]]) -> list[str]:
    """Every key of any revision: the first revision's order, then the others' new keys."""
    keys: dict[str, None] = {}
    for values in per_rev.values():
        keys.update(dict.fromkeys(values))
    return list(keys)


def differing_keys(per_rev: Mapping[str, Mapping[str, object]]) -> list[str]:
    """Keys whose value is not the same at every revision (absent counts as a value)."""
    return [
        key for key in keys_in_order(per_rev)
        if len({json.dumps(values.get(key, ABSENT), sort_keys=True) for values in per_rev.values()}) > 1
    ]


def by_file(per_rev: Mapping[str, Mapping[str, Mapping]]) -> dict[str, dict[str, dict[str, object]]]:
    """{rev: {file: tree}} -> {file: {rev: flat values}}, files in the order first seen."""
    paths = dict.fromkeys(path for trees in per_rev.values() for path in trees)
    return {path: {rev: flatten(trees.get(path) or {}) for rev, trees in per_rev.items()} for path in paths}


def params_section(revs: Sequence[str], params: Mapping[str, Mapping[str, Mapping]]) -> str:
    """One table per params file: a row per param that differs, a column per revision."""
    parts = []
    for path, per_rev in by_file(params).items():
        keys = differing_keys(per_rev)
        if not keys:
            continue
        rows = [[code(key), *(format_value(per_rev[rev].get(key)) for rev in revs)] for key in keys]
        parts.append(f"{code(path)}:\n\n" + markdown.table(["param", *map(code, revs)], rows))
    if not parts:
        return "No param differs between these revisions.\n"
    return "\n".join(parts)


def metrics_section(revs: Sequence[str], metrics: Mapping[str, Mapping[str, Mapping]]) -> str:
    """One table per metrics file: every metric, a column per revision, then the change
    of each later revision from the first one where both are numbers."""
    parts = []
    first, later = revs[0], list(revs[1:])
    for path, per_rev in by_file(metrics).items():
        rows = []
        for key in keys_in_order(per_rev):
            values = [per_rev[rev].get(key) for rev in revs]
            changes = [format_change(values[0], per_rev[rev].get(key)) for rev in later]
            rows.append([code(key), *map(format_value, values), *changes])
        header = ["metric", *map(code, revs), *(f"Δ {code(rev)} − {code(first)}" for rev in later)]
        parts.append(f"{code(path)}:\n\n" + markdown.table(header, rows))
    if not parts:
        return "No revision has a metrics file.\n"
    return "\n".join(parts)


def slug(text: str) -> str:
    """A file name from a plot id or revision: lowercase letters, digits and dashes."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "plot"


def unique_slugs(names: Sequence[str]) -> dict[str, str]:
    """A distinct slug per name, in order: a repeated slug gets -2, -3, …"""
    slugs: dict[str, str] = {}
    for name in names:
        base, n = slug(name), 1
        candidate = base
        while candidate in slugs.values():
            n += 1
            candidate = f"{base}-{n}"
        slugs[name] = candidate
    return slugs


def vega_specs(data: Mapping[str, list]) -> dict[str, dict]:
    """Each data plot's complete Vega-Lite spec (data included), by plot id."""
    return {
        plot_id: entry["content"]
        for plot_id, entries in data.items()
        for entry in entries
        if entry.get("type") == "vega" and isinstance(entry.get("content"), dict)
    }


def image_files(data: Mapping[str, list]) -> dict[str, dict[str, str]]:
    """Each image plot's file per revision: {plot id: {rev: path DVC wrote}}."""
    images: dict[str, dict[str, str]] = {}
    for plot_id, entries in data.items():
        for entry in entries:
            if entry.get("type") == "image":
                for rev in entry.get("revisions", []):
                    images.setdefault(plot_id, {})[rev] = entry["url"]
    return images


def for_png(spec: Mapping) -> dict:
    """The spec as a static image reads best: a param that a checkbox would switch on
    in a browser (the confusion template's showValues, counts in the cells) starts on,
    since nobody can tick it in a PNG; a white background instead of a transparent one."""
    static = json.loads(json.dumps(spec))
    for param in static.get("params", []):
        bind = param.get("bind") if isinstance(param, dict) else None
        if isinstance(bind, dict) and bind.get("input") == "checkbox" and "value" not in param:
            param["value"] = True
    static.setdefault("background", "white")
    return static


def plot_errors(errors: Sequence[Mapping], plot_ids: Mapping[str, None] | None = None) -> list[Missing]:
    """What `dvc plots diff --json` reports under "errors", as missing files.

    An error names its plot and file ("name", "source"). One without them failed a
    whole revision's plots (a DVC-cached directory absent from the cache); when
    `plot_ids` is given (a run of `--targets` for one plot), it belongs to that plot.
    """
    missing = []
    for error in errors:
        name = error.get("name") or (next(iter(plot_ids)) if plot_ids else "every plot")
        source = error.get("source") or (next(iter(plot_ids)) if plot_ids else "?")
        missing.append(
            Missing(error.get("rev", "?"), source, f"plot {name}", reason(error.get("type"), error.get("msg")))
        )
    return missing


def reason(kind: str | None, message: str | None) -> str:
    if kind == "FileNotFoundError":
        return "not in this revision"
    if kind == "DataIndexDirError" or "cache" in (message or "").lower():
        return f"not in the DVC cache ({message})" if message else "not in the DVC cache"
    return f"{kind}: {message}" if kind else (message or "could not be read")


def in_rev_order(revs: Sequence[str], missing: Sequence[Missing]) -> list[Missing]:
    """Each missing file once, by revision as given, then path."""
    order = {rev: i for i, rev in enumerate(revs)}
    return sorted(dict.fromkeys(missing), key=lambda m: (order.get(m.rev, len(order)), m.path, m.needed_for))


def missing_section(revs: Sequence[str], missing: Sequence[Missing]) -> str:
    if not missing:
        return "Every revision has every declared file.\n"
    rows = in_rev_order(revs, missing)
    return markdown.table(
        ["revision", "file", "needed for", "why"],
        [[code(m.rev), code(m.path), m.needed_for, m.reason] for m in rows],
    )


def missing_line(missing: Sequence[Missing]) -> str:
    """The one line for stderr: which revision lacks which file (the first few)."""
    pairs = list(dict.fromkeys(f"{m.path} at {m.rev}" for m in missing))
    shown = ", ".join(pairs[:MISSING_SHOWN])
    if len(pairs) > MISSING_SHOWN:
        shown += f" and {len(pairs) - MISSING_SHOWN} more"
    return f"compare: missing {shown} (see the report's Missing files)"


def image_row(revs: Sequence[str], files: Mapping[str, str], title: str) -> str:
    cells = [f"![{title} at {rev}]({files[rev]})" if rev in files else "*missing*" for rev in revs]
    return markdown.table(list(map(code, revs)), [cells])


def index_markdown(
    revs: Sequence[str],
    params: str,
    metrics: str,
    plots: Sequence[str],
    missing: str,
) -> str:
    listed = ", ".join(map(code, revs))
    return "\n".join([
        MARKER,
        f"# Comparing {listed}",
        "",
        "Written by `python -m pipeline.commands.compare " + " ".join(revs) + "`.",
        "",
        "## Params that differ",
        "",
        params,
        "## Metrics",
        "",
        metrics,
        "## Plots",
        "",
        *plots,
        "## Missing files",
        "",
        missing,
    ])


def vega_plot_md(title: str, png: str, spec_file: str | None) -> str:
    spec = f"\n[Vega-Lite spec]({spec_file})\n" if spec_file else ""
    return f"### {title}\n\n![{title}]({png})\n{spec}"


def image_plot_md(title: str, revs: Sequence[str], files: Mapping[str, str]) -> str:
    return f"### {title}\n\n" + image_row(revs, files, title)


def absent_plot_md(title: str) -> str:
    return f"### {title}\n\nNo revision has its data (see Missing files).\n"


def check_revs(revs: Sequence[str]) -> None:
    if not revs:
        raise UserError("no revision to compare: give one or more git revisions, branches, tags or experiment names")
    repeated = sorted({rev for rev in revs if revs.count(rev) > 1})
    if repeated:
        raise UserError(f"revision given more than once: {', '.join(repeated)}")
    for rev in revs:
        if not rev.strip() or rev.startswith("-"):
            raise UserError(f"not a revision: {rev!r}")


# ---------------------------------------------------------------- DVC


def open_repo():
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        return Repo()
    except NotDvcRepoError:
        raise UserError("not inside a DVC project (no .dvc folder here or above)") from None


def show_per_rev(show, revs: Sequence[str], what: str) -> tuple[dict[str, dict], list[Missing]]:
    """{rev: {file: tree}} from repo.metrics.show / repo.params.show, and the files it
    could not read. DVC keys its result by revision, revisions of the same commit
    joined by commas ("HEAD,main"), and adds the workspace. An unknown revision is a
    UserError."""
    from dvc.scm import RevError

    try:
        result = show(revs=list(revs))
    except RevError as error:
        raise UserError(f"{error}: not a git commit, branch, tag or DVC experiment") from None
    by_rev = {name: entry for key, entry in result.items() for name in key.split(",")}
    values: dict[str, dict] = {}
    missing: list[Missing] = []
    for rev in revs:
        entry = by_rev.get(rev, {})
        values[rev] = {}
        if "error" in entry:
            missing.append(Missing(rev, "?", what, error_reason(entry["error"])))
        for path, file_entry in (entry.get("data") or {}).items():
            if "error" in file_entry:
                missing.append(Missing(rev, path, what, error_reason(file_entry["error"])))
            else:
                values[rev][path] = file_entry.get("data") or {}
    return values, missing


def error_reason(error: object) -> str:
    if isinstance(error, BaseException):
        return reason(type(error).__name__, str(error))
    return reason(None, str(error))


def plots_diff(root: Path, revs: Sequence[str], images_dir: Path, target: str | None = None) -> dict:
    """`dvc plots diff REV… --json -o DIR [--targets T]`: {"data": {plot id: [entries]},
    "errors": [...]}; a vega entry's "content" is the complete spec, data included; an
    image entry's "url" is the copy DVC wrote into DIR."""
    # One revision alone would be compared with the workspace; given twice, DVC shows it alone.
    args = list(revs) * 2 if len(revs) == 1 else list(revs)
    command = [sys.executable, "-m", "dvc", "plots", "diff", *args, "--json", "-o", str(images_dir)]
    if target is not None:
        command += ["--targets", target]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"`dvc plots diff` failed: {last.removeprefix('ERROR: ')}")
    try:
        return limits.parse_json(result.stdout, non_finite=True)
    except limits.JsonError as error:
        raise UserError(f"`dvc plots diff --json` printed no JSON we read ({error})") from None


def declared_plot_ids(root: Path) -> list[str]:
    """The plot ids dvc.yaml declares: its top-level plots, and stage outputs marked as plots."""
    import yaml

    path = root / "dvc.yaml"
    if not path.exists():
        return []
    config = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    ids = [entry if isinstance(entry, str) else next(iter(entry)) for entry in config.get("plots") or []]
    for stage in (config.get("stages") or {}).values():
        for entry in stage.get("plots") or []:
            ids.append(entry if isinstance(entry, str) else next(iter(entry)))
    return list(dict.fromkeys(ids))


def pick_target_entries(data: Mapping[str, list], target: str) -> list:
    """With --targets, DVC may list a declared path twice: as dvc.yaml's plot
    ("dvc.yaml::path", with its props) and as the bare file; keep the declared one."""
    for key, entries in data.items():
        if key.endswith("::" + target):
            return entries
    return data.get(target, [])


def collect_plots(root: Path, revs: Sequence[str], images_dir: Path) -> tuple[dict[str, list], list[Missing]]:
    """Every declared plot's entries for these revisions, and the files they lack.

    One `dvc plots diff` for all plots; if a revision failed as a whole (DVC cannot list
    a cached directory output that is not in the cache, and then drops every plot of
    that revision), again plot by plot with --targets, so only that plot is missing."""
    result = plots_diff(root, revs, images_dir)
    errors = result.get("errors") or []
    if all(error.get("name") for error in errors):
        return dict(result.get("data") or {}), plot_errors(errors)
    ids = list(
        dict.fromkeys(
            [*(result.get("data") or {}), *(e["name"] for e in errors if e.get("name")), *declared_plot_ids(root)]
        )
    )
    data: dict[str, list] = {}
    missing: list[Missing] = []
    for plot_id in ids:
        one = plots_diff(root, revs, images_dir / slug(plot_id), target=plot_id)
        data[plot_id] = pick_target_entries(one.get("data") or {}, plot_id)
        missing += plot_errors(one.get("errors") or [], {plot_id: None})
    return data, missing


# ---------------------------------------------------------------- writing the folder


def render_png(plot_id: str, spec: dict) -> bytes:
    import vl_convert

    try:
        return vl_convert.vegalite_to_png(for_png(spec), scale=SCALE)
    except Exception as error:  # vl_convert raises ValueError with the renderer's message
        raise UserError(f"cannot render the plot {plot_id!r}: {str(error).splitlines()[0]}") from None


def write_plots(folder: Path, revs: Sequence[str], data: Mapping[str, list], specs_too: bool = True) -> list[str]:
    """Writes each plot's files into folder; returns index.md's section per plot."""
    specs, images = vega_specs(data), image_files(data)
    slugs = unique_slugs(list(data))
    rev_slugs = unique_slugs(list(revs))
    sections = []
    for plot_id in data:
        name = slugs[plot_id]
        if plot_id in specs:
            spec_file = f"{name}.vl.json" if specs_too else None
            if spec_file:
                spec = json.dumps(specs[plot_id], separators=(",", ":"))
                (folder / spec_file).write_text(spec + "\n", encoding="utf-8")
            (folder / f"{name}.png").write_bytes(render_png(plot_id, specs[plot_id]))
            sections.append(vega_plot_md(plot_id, f"{name}.png", spec_file))
        elif plot_id in images:
            files = {}
            for rev, source in images[plot_id].items():
                if rev in rev_slugs:
                    files[rev] = f"{name}.{rev_slugs[rev]}{Path(source).suffix}"
                    shutil.copyfile(source, folder / files[rev])
            sections.append(image_plot_md(plot_id, revs, files))
        else:
            sections.append(absent_plot_md(plot_id))
    return sections


def check_replaceable(out: Path) -> None:
    if not out.exists():
        return
    if not out.is_dir():
        raise UserError(f"--out {out} exists and is not a folder")
    index = out / INDEX
    empty = not any(out.iterdir())
    if not empty and not (index.is_file() and index.read_text(encoding="utf-8", errors="replace").startswith(MARKER)):
        raise UserError(f"--out {out} is a folder this command did not write; give another --out or remove it")


def write_report(out: Path, revs: Sequence[str], specs_too: bool = True) -> list[Missing]:
    """Builds the report folder at out; returns the files revisions lack."""
    check_revs(revs)
    check_replaceable(out)
    with files.atomic_folder(out) as folder:
        repo = open_repo()
        with repo:
            root = Path(repo.root_dir)
            metrics, missing_metrics = show_per_rev(repo.metrics.show, revs, "metrics")
            params, missing_params = show_per_rev(repo.params.show, revs, "params")
        with tempfile.TemporaryDirectory() as images:
            data, missing_plots = collect_plots(root, revs, Path(images))
            plots = write_plots(folder, revs, data, specs_too)
        missing = in_rev_order(revs, [*missing_metrics, *missing_params, *missing_plots])
        text = index_markdown(
            revs, params_section(revs, params), metrics_section(revs, metrics), plots, missing_section(revs, missing)
        )
        (folder / INDEX).write_text(text, encoding="utf-8")
    return missing


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pipeline.commands.compare", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "revs", nargs="*", metavar="REV", help="git revisions, branches, tags, experiment names or `workspace`"
    )
    parser.add_argument(
        "--no-specs", action="store_true",
        help="leave out each plot's Vega-Lite spec (.vl.json; the confusion matrix's holds every review, megabytes)",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"the report folder (default: {DEFAULT_OUT}/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    out = args.out.absolute()
    missing = write_report(out, args.revs, specs_too=not args.no_specs)
    if missing:
        print(missing_line(missing), file=sys.stderr)
    print(f"wrote {out / INDEX}")


if __name__ == "__main__":
    run(main)
