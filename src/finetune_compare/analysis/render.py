"""Rendering a report's blocks with its Jinja2 templates (`templates/report.md.j2`, `templates/report.html.j2`):
Markdown, and self-contained HTML (images inlined, a small stylesheet, a check that lets a headless browser confirm
every image decoded). The comparison report and the sweep report share these templates, and one list of blocks
feeds both formats, so they never disagree."""

from __future__ import annotations

import base64
import functools
from pathlib import Path

import jinja2

from .report_blocks import SECTIONS, Block

TEMPLATES = Path(__file__).with_name("templates")

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1200px;margin:2em auto;padding:0 1.5em;
color:#1a1a1a;line-height:1.45}
h1{border-bottom:3px solid #0072B2;padding-bottom:.3em}h2{margin-top:2em;border-bottom:1px solid #ccc;padding-bottom:.2em}
nav a{margin-right:1em}table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.88em;width:100%}
th,td{border:1px solid #ddd;padding:.35em .6em;text-align:left;vertical-align:top}th{background:#f1f5f9}
tr:nth-child(even) td{background:#fafafa}caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
figure{margin:1em 0 2em}figure img{max-width:100%;border:1px solid #eee}figcaption{font-weight:600;margin-bottom:.3em}
pre{background:#f6f8fa;padding:1em;overflow-x:auto;font-size:.85em}.verdict p{font-size:1.05em}
section#verdict{background:#eef6fb;padding:.2em 1em 1em;border-left:4px solid #0072B2}
"""

# Lets a headless browser test confirm every inlined image decoded.
IMAGE_CHECK = ("<script>window.addEventListener('load',function(){var ok=Array.prototype.every.call(document.images,"
               "function(i){return i.complete&&i.naturalWidth>0});document.body.setAttribute('data-images-ok',"
               "ok&&document.images.length>0?'true':'false');});</script>")


def _md_cells(rows: list[list[str]]) -> list[list[str]]:
    return [[c.replace("|", "\\|").replace("\n", " ") for c in r] for r in rows]


@functools.lru_cache(maxsize=2)
def _environment(markdown: bool) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=not markdown,
                             undefined=jinja2.StrictUndefined, trim_blocks=markdown, lstrip_blocks=markdown)
    env.filters["png_base64"] = lambda path: base64.b64encode(Path(path).read_bytes()).decode("ascii")
    env.filters["md_cells"] = _md_cells
    env.filters["trim_end"] = lambda text: text.rstrip()
    env.filters["relative_to"] = lambda path, root: str(Path(path).relative_to(root))
    return env


def render_markdown(blocks: list[Block], output_dir: Path, title: str = "finetune-compare report") -> str:
    text = _environment(True).get_template("report.md.j2").render(blocks=blocks, title=title, output_dir=output_dir)
    return text.rstrip("\n") + "\n"  # every block ends in a blank line; the file ends in one newline


def render_html(blocks: list[Block], title: str = "finetune-compare report",
                sections: dict[str, str] | None = None) -> str:
    return _environment(False).get_template("report.html.j2").render(
        blocks=blocks, title=title,
        # the navigation links the sections this report has (one that does not apply is left out, not linked)
        sections=sections or {b.anchor: b.content for b in blocks if b.kind == "h2" and b.anchor in SECTIONS},
        css=jinja2.utils.markupsafe.Markup(CSS),
        image_check=jinja2.utils.markupsafe.Markup(IMAGE_CHECK))
