"""The report document: blocks rendered to HTML (with its print style sheet) or Markdown."""
from __future__ import annotations

import html

import numpy as np
import pandas as pd


# ------------------------------------------------------------------ document
class _Doc:
    """A list of blocks rendered to HTML or Markdown."""

    def __init__(self):
        self.blocks = []

    def h(self, level, text, anchor=None):
        self.blocks.append(("h", level, text, anchor))

    def p(self, text):
        self.blocks.append(("p", text))

    def note(self, text):
        self.blocks.append(("note", text))

    def ul(self, items):
        self.blocks.append(("ul", list(items)))

    def fig(self, name, caption):
        self.blocks.append(("fig", name, caption))

    def table(self, df, caption="", csv=None, max_rows=None, widths=None):
        """A table; ``widths`` (optional, {column: CSS width}) for columns of long text."""
        self.blocks.append(("table", _clean(df), caption, csv, max_rows, widths))

    def ol(self, items, cls=None):
        self.blocks.append(("ol", list(items), cls))

    # -- html
    def html(self, title) -> str:
        out = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
               f"<style>{_CSS}</style></head><body><main>"]
        toc = [(b[2], b[3]) for b in self.blocks if b[0] == "h" and b[1] == 2]
        for b in self.blocks:
            kind = b[0]
            if kind == "h":
                _, level, text, anchor = b
                a = f" id='{anchor}'" if anchor else ""
                out.append(f"<h{level}{a}>{html.escape(text)}</h{level}>")
                if level == 1 and toc:
                    out.append("<nav><b>Contents</b><ol>" + "".join(
                        f"<li><a href='#{a}'>{html.escape(t)}</a></li>" for t, a in toc if a) + "</ol></nav>")
            elif kind == "p":
                out.append(f"<p>{_inline(b[1])}</p>")
            elif kind == "note":
                out.append(f"<div class='note'>{_inline(b[1])}</div>")
            elif kind == "ul":
                out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b[1]) + "</ul>")
            elif kind == "ol":
                c = f" class='{b[2]}'" if b[2] else ""
                out.append(f"<ol{c}>" + "".join(f"<li>{_inline(i)}</li>" for i in b[1]) + "</ol>")
            elif kind == "fig":
                _, name, cap = b
                out.append(f"<figure><a href='{name}'><img src='{name}' alt='{html.escape(cap[:120])}'></a>"
                           f"<figcaption>{_inline(cap)}</figcaption></figure>")
            elif kind == "table":
                _, df, cap, csv, max_rows, widths = b
                shown = df if max_rows is None else df.head(max_rows)
                body = shown.to_html(index=False, escape=True, border=0, classes="t", na_rep="–")
                if widths:
                    cols = "".join(f"<col style='width:{widths[c]}'>" if c in widths else "<col>"
                                   for c in shown.columns)
                    body = body.replace("<thead>", f"<colgroup>{cols}</colgroup><thead>", 1)
                more = f" (first {max_rows} of {len(df)} rows)" if max_rows is not None and len(df) > max_rows else ""
                link = f" Full table: <a href='{csv}'>{csv}</a>{more}." if csv else ""
                out.append(f"<div class='tw'>{body}</div><p class='cap'>{_inline(cap)}{link}</p>")
        out.append("</main></body></html>")
        return "\n".join(out)

    # -- markdown
    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            kind = b[0]
            if kind == "h":
                out.append("#" * b[1] + " " + b[2])
            elif kind == "p":
                out.append(b[1])
            elif kind == "note":
                out.append("> " + b[1])
            elif kind == "ul":
                out.append("\n".join(f"- {i}" for i in b[1]))
            elif kind == "ol":
                out.append("\n".join(f"{k}. {i}" for k, i in enumerate(b[1], 1)))
            elif kind == "fig":
                out.append(f"![{b[2][:80]}]({b[1]})\n\n*{b[2]}*")
            elif kind == "table":
                _, df, cap, csv, max_rows, _ = b
                shown = df if max_rows is None else df.head(max_rows)
                out.append(_md_table(shown) + "\n\n*" + cap + (f" Full table: [{csv}]({csv})." if csv else "") + "*")
        return "\n\n".join(out) + "\n"


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    """Text cells on one line: the line breaks of multi-line TOML notes become spaces (pandas would print
    them as a literal backslash-n in HTML).
    """
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or str(out[c].dtype) in ("string", "str"):
            out[c] = out[c].map(lambda v: " ".join(v.split()) if isinstance(v, str) else v)
    out.columns = [" ".join(str(c).split()) for c in out.columns]
    return out


def _inline(text: str) -> str:
    """Escape, then allow **bold** and `code`."""
    import re

    t = html.escape(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
    t = re.sub(r"`(.+?)`", r"<code>\1</code>", t)
    return t


def _md_table(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(esc(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(esc("–" if (isinstance(v, float) and not np.isfinite(v)) else v)
                                       for v in row) + " |")
    return "\n".join(lines)


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#222;background:#fff;margin:0}
main{max-width:1100px;margin:0 auto;padding:1.5em 2em 4em;line-height:1.45;box-sizing:border-box}
h1{font-size:1.7em;margin-bottom:.2em} h2{margin-top:2.2em;border-bottom:2px solid #0072B2;padding-bottom:.2em}
h3{margin-top:1.6em;color:#0072B2}
figure{margin:1.2em 0} figure img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption,.cap{font-size:.92em;color:#444;margin-top:.3em}
.note{background:#FFF8E1;border-left:4px solid #E69F00;padding:.6em 1em;margin:1em 0}
.tw{max-width:100%} table.t{border-collapse:collapse;font-size:.86em;margin-top:.6em;width:100%;
  table-layout:auto;max-width:100%}
table.t th,table.t td{border-bottom:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top;
  overflow-wrap:break-word;word-break:normal}
table.t td:last-child{overflow-wrap:anywhere;min-width:12em}
table.t th{background:#f3f6fa} nav{background:#f7f7f7;padding:.6em 1.2em;margin:1em 0}
code{background:#f3f3f3;padding:0 .2em;overflow-wrap:anywhere}
ol.refs li{margin:.25em 0} ol.hyp{list-style:none;padding-left:0} ol.hyp li{margin:.4em 0}
@media print{
  @page{size:A4;margin:16mm 14mm}
  body{font-size:10pt} main{max-width:none;padding:0}
  nav{display:none} a{color:inherit;text-decoration:none}
  table.t{font-size:8pt} table.t th,table.t td{padding:.15em .3em}
  thead{display:table-header-group} tr,figure{break-inside:avoid;page-break-inside:avoid}
  h2,h3{break-after:avoid;page-break-after:avoid}
  figure img{max-width:100%;border:none}
}
"""
