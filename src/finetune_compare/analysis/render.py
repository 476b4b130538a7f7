"""Rendering the report's blocks: Markdown, and self-contained HTML (images inlined, a small stylesheet, a check
that lets a headless browser confirm every image decoded). One list of blocks feeds both, so they never disagree."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from .report_blocks import SECTIONS, Block


def render_markdown(blocks: list[Block], output_dir: Path, title: str = "finetune-compare report") -> str:
    out = [f"# {title}", ""]
    for blk in blocks:
        if blk.kind == "h2":
            out += [f"## {blk.content}", ""]
        elif blk.kind == "p":
            out += [f"**{blk.content}**" if blk.caption == "headline" else blk.content, ""]
        elif blk.kind == "list":
            if blk.caption:
                out += [f"**{blk.caption}**", ""]
            out += [f"- {x}" for x in blk.content] + [""]
        elif blk.kind == "code":
            if blk.caption:
                out += [f"**{blk.caption}**", ""]
            out += ["```", blk.content.rstrip(), "```", ""]
        elif blk.kind == "table":
            if blk.caption:
                out += [f"**{blk.caption}**", ""]
            rows = [[c.replace("|", "\\|").replace("\n", " ") for c in r] for r in blk.content]
            out += ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
            out += ["| " + " | ".join(r) + " |" for r in rows[1:]] + [""]
        elif blk.kind == "img":
            out += [f"![{blk.caption}]({Path(blk.content).relative_to(output_dir)})", ""]
    return "\n".join(out)


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


def render_html(blocks: list[Block], title: str = "finetune-compare report",
                sections: dict[str, str] | None = None) -> str:
    e = html.escape
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
             "<meta name='viewport' content='width=device-width, initial-scale=1'>",
             f"<title>{e(title)}</title><style>{CSS}</style>{IMAGE_CHECK}</head><body>",
             f"<h1>{e(title)}</h1><nav>"
             + "".join(f"<a href='#{k}'>{e(v)}</a>" for k, v in (sections or SECTIONS).items()) + "</nav>"]
    open_section = False
    for blk in blocks:
        if blk.kind == "h2":
            if open_section:
                parts.append("</section>")
            parts.append(f"<section id='{blk.anchor}'><h2>{e(blk.content)}</h2>")
            open_section = True
        elif blk.kind == "p":
            parts.append(f"<p class='headline'><strong>{e(blk.content)}</strong></p>" if blk.caption == "headline"
                         else f"<p>{e(blk.content)}</p>")
        elif blk.kind == "list":
            cap = f"<p><strong>{e(blk.caption)}</strong></p>" if blk.caption else ""
            parts.append(cap + "<ul>" + "".join(f"<li>{e(x)}</li>" for x in blk.content) + "</ul>")
        elif blk.kind == "code":
            if blk.caption:  # long (the resolved config): collapsed until asked for
                parts.append(f"<details><summary><strong>{e(blk.caption)}</strong></summary>"
                             f"<pre>{e(blk.content)}</pre></details>")
            else:
                parts.append(f"<pre>{e(blk.content)}</pre>")
        elif blk.kind == "table":
            rows = blk.content
            cap = f"<caption>{e(blk.caption)}</caption>" if blk.caption else ""
            head = "".join(f"<th>{e(c)}</th>" for c in rows[0])
            body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
            parts.append(f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif blk.kind == "img":
            data = base64.b64encode(Path(blk.content).read_bytes()).decode("ascii")
            parts.append(f"<figure><figcaption>{e(blk.caption)}</figcaption>"
                         f"<img alt='{e(blk.caption)}' src='data:image/png;base64,{data}'></figure>")
    if open_section:
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts)
