"""HTML of the report: one page template, the provenance stamps and the index's tables."""
from __future__ import annotations

import html

import mistune

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em 2em; color: #222; }
table { border-collapse: collapse; font-size: 0.85em; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; vertical-align: top; }
th { background: #f0f0f0; }
.stamp { font-size: 0.8em; color: #555; background: #f7f7f2; border-left: 3px solid #b5a642; padding: 0.3em 0.6em;
         margin: 0.2em 0 1.2em 0; }
.holds { color: #176317; } .fails { color: #a11; } .inconclusive { color: #8a6d00; }
nav a { margin-right: 1em; }
img.thumb { max-height: 140px; border: 1px solid #ddd; margin: 4px; }
td.n { text-align: right; } td.zero { color: #bbb; }
"""


def markdown_html(text: str) -> str:
    """Markdown (with tables) as HTML."""
    return mistune.create_markdown(plugins=["table"], escape=False)(text)


def page(title: str, body: str, nav: list[tuple[str, str]]) -> str:
    links = " ".join(f'<a href="{html.escape(href)}">{html.escape(name)}</a>' for name, href in nav)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><nav>{links}</nav>\n{body}\n</body></html>\n")


def stamp(prov: dict, figure: int, cell: int, page_name: str) -> str:
    """The provenance line under a figure: stage, parameters, commit, data, wall time, and the cell that drew it."""
    parts = [f"Figure {figure} of stage <b>{html.escape(prov['stage'])}</b>",
             f'drawn by <a href="{page_name}#cell-{cell}">cell {cell}</a>',
             f"profile {html.escape(str(prov.get('profile')))}",
             f"parameters {html.escape(prov.get('params_digest', '?'))}",
             f"commit {html.escape(prov.get('commit_short', '?'))}{' (uncommitted changes)' if prov.get('dirty') else ''}"]
    if prov.get("data"):
        parts.append(f"data {html.escape(prov['data'])}")
    if prov.get("wall_time_s") is not None:
        parts.append(f"stage wall time {prov['wall_time_s']:.0f} s")
    return f'<div class="stamp" id="fig-{figure}">' + " · ".join(parts) + "</div>"


def provenance_table(provs: list[dict]) -> str:
    rows = ["<table><tr><th>stage</th><th>page</th><th>figures</th><th>profile</th><th>parameters</th><th>commit</th>"
            "<th>data</th><th>wall time</th><th>written</th></tr>"]
    for p in provs:
        rows.append(f"<tr><td>{html.escape(p['stage'])}</td><td><a href=\"{p['page']}\">{p['page']}</a></td>"
                    f"<td>{p.get('n_figures', 0)}</td><td>{html.escape(str(p.get('profile')))}</td>"
                    f"<td>{html.escape(p.get('params_digest', ''))}</td><td>{html.escape(p.get('commit_short', ''))}</td>"
                    f"<td>{html.escape(p.get('data') or '-')}</td>"
                    f"<td>{'' if p.get('wall_time_s') is None else format(p['wall_time_s'], '.0f') + ' s'}</td>"
                    f"<td>{html.escape(str(p.get('written', '')))}</td></tr>")
    rows.append("</table>")
    return "\n".join(rows)


def section_table(counts: list[dict], pages: dict[str, str]) -> str:
    """The index's summary: one row per section of the paper, its findings counted by verdict, a link to its page."""
    from .study import TITLES
    cols = ("holds", "inconclusive", "fails", "not run")
    rows = ['<table id="sections"><tr><th>section</th><th>page</th>'
            + "".join(f'<th class="{c.replace(" ", "-")}">{c}</th>' for c in cols) + "</tr>"]
    for c in counts:
        st = c["stage"]
        page = (f'<a href="{pages[st]}">{html.escape(TITLES.get(st, st))}</a>' if st in pages
                else html.escape(TITLES.get(st, st or "")) + " (not run)")
        cells = "".join(f'<td class="n {v.replace(" ", "-") if c[v] else "zero"}">{c[v]}</td>' for v in cols)
        rows.append(f"<tr><td>{html.escape(c['section'])}</td><td>{page}</td>{cells}</tr>")
    rows.append("</table>")
    return "\n".join(rows)
