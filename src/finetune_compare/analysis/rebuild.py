"""`report --results DIR`: rebuild a comparison's report, never replacing a result with less.

- Run files present, and every run the existing comparison.json was built from still there: rebuilt from the runs.
- Runs missing that the existing comparison.json was built from: refused, naming them (nothing is written).
- No run files at all, but a comparison.json (a published copy such as docs/results): the verdicts are restated
  from its stored paired statistics (per-pair differences and the test-set bootstrap, all the verdict needs), the
  plot drawn from the comparison alone is redrawn, the others are kept as they are, and the report re-rendered.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import UserError
from ..layout import Layout, seed_of
from ..utils.io import atomic_write_text, write_json
from .aggregate import restate_verdicts
from .exports import write_exports
from .plots import method_colors, metric_comparison
from .render import render_html, render_markdown
from .report import build_blocks, build_report
from .run_files import read_json

log = logging.getLogger(__name__)


def recorded_runs(cmp: dict) -> set[tuple[str, int]]:
    """The (method, seed) runs a comparison.json was built from (older files: its paired seeds and collapsed runs)."""
    if isinstance(cmp.get("runs"), dict):
        return {(m, int(s)) for m, seeds in cmp["runs"].items() for s in seeds}
    out = {(c["method"], int(c["seed"])) for c in cmp.get("collapsed_runs", [])}
    for c in (cmp.get("comparisons") or {}).values():
        out |= {(m, int(s)) for m in (c["a"], c["b"]) for s in c["primary"]["seeds"]}
    return out


def runs_on_disk(folder: Path) -> set[tuple[str, int]]:
    return {(p.parent.parent.name, seed_of(p.parent)) for p in Layout(folder).finished_runs()}


def rebuild_plan(folder: Path) -> str:
    """'runs' (rebuild from the run files), 'restate' (from comparison.json alone), or a UserError naming what is
    missing. Touches nothing."""
    layout = Layout(folder)
    previous = read_json(layout.comparison) if layout.comparison.is_file() else None
    on_disk = runs_on_disk(folder)
    if not on_disk:
        if previous is None:
            raise UserError(f"'{folder}' has neither run files (runs/<method>/seed-<n>/metrics.json) nor a "
                            "comparison.json: nothing to rebuild a report from")
        return "restate"
    if previous is not None:
        lost = sorted(recorded_runs(previous) - on_disk)
        if lost:
            shown = ", ".join(f"{m} seed {s}" for m, s in lost[:8]) + (f" and {len(lost) - 8} more" if len(lost) > 8
                                                                        else "")
            raise UserError(f"'{folder}': its comparison.json was built from runs that are no longer there ({shown}); "
                            "rebuilding would replace it with less: restore those run folders, rerun the "
                            "comparison to retrain them, or delete comparison.json to report on the runs that are "
                            "there (nothing was changed)")
        _refuse_lost_sections(folder, previous)
    return "runs"


def _refuse_lost_sections(folder: Path, previous: dict) -> None:
    """A rebuild from the runs re-reads the tuning studies and the pre-registration from their files: when those are
    gone, it would report tuned runs as untuned and drop what was declared. Refused instead, like lost runs."""
    layout = Layout(folder)
    studied = {read_json(p).get("method") for p in layout.study_summaries()}
    lost = [f"the tuning study of {m} ({layout.study_summary(m)})" for m in sorted(previous.get("tuning") or {})
            if m not in studied]
    if previous.get("preregistration") and not layout.preregistration.is_file():
        lost.append(f"the pre-registration ({layout.preregistration})")
    if lost:
        raise UserError(f"'{folder}': its comparison.json was built with {', '.join(lost)}, which is no longer "
                        "there; rebuilding would replace it with less: restore it, or delete comparison.json to "
                        "report on what is there (nothing was changed)")


def restate_report(folder: Path) -> dict:
    """The verdicts recomputed from comparison.json's stored statistics; the report re-rendered around them."""
    layout = Layout(folder)
    cmp = restate_verdicts(read_json(layout.comparison))
    plots = {name: folder / rel for name, rel in (cmp.get("plots") or {}).items() if (folder / rel).is_file()}
    plots["metric_comparison"] = metric_comparison(cmp, method_colors(cmp["methods"]),
                                                   layout.plot("metric_comparison"))  # draws the verdict
    cmp["plots"] = {k: str(v.relative_to(folder)) for k, v in plots.items()}
    write_json(layout.comparison, cmp)
    write_exports(folder, cmp)
    blocks = build_blocks(folder, cmp, cmp.get("error_analysis") or {}, plots)
    atomic_write_text(layout.report_md, render_markdown(blocks, folder))
    atomic_write_text(layout.report_html, render_html(blocks))
    log.info("%s: no run files; verdicts restated from comparison.json's stored statistics (plots drawn from the "
             "runs kept as they were)", folder)
    return cmp


def rebuild_report(folder: str | Path) -> dict:
    folder = Path(folder)
    return build_report(folder) if rebuild_plan(folder) == "runs" else restate_report(folder)
