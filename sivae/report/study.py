"""Build the report: an index opening with a summary per paper section and the findings (failures first),
then one page per stage, in the paper's section order.

`build_report` is what notebooks/08_report.py calls. Each stage page is its executed notebook rendered by
nbconvert (figures embedded, so the site is one folder that opens without a server or a network; code cells
folded; the notebook's default parameters cell left out when papermill injected the ones the stage ran
with), with a provenance header and, under every figure, a stamp: the stage, its profile and parameters (a digest of
the parameters in its run record), the git commit and whether the tree was dirty, the data it read (the
md5 of data.dvc for the image stages), the stage's wall time, and a link to the cell that drew it.
"""
from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
from pathlib import Path

import nbformat
import yaml

from ..errors import ConfigError, DataError
from ..findings import table as FT
from ..params import parse_list
from . import plots as P

__all__ = ["STAGES", "DATA_STAGES", "stage_files", "provenance", "stamp_notebook", "build_report", "check_site",
           "ordered_table", "section_counts"]

STAGES = ("theory_discrete", "toy2d", "stability", "images", "translation", "ood", "findings")   # paper order
DATA_STAGES = ("images", "ood", "translation")   # stages that read the versioned data (data.dvc)
TITLES = {"theory_discrete": "4.1 / 9.6 Theory on discrete distributions", "toy2d": "6.1 2D toy datasets",
          "stability": "6.2 / 9.5 Training stability", "images": "6.3 Image generation",
          "ood": "6.5 Out-of-distribution detection", "translation": "6.4 Image translation",
          "findings": "The findings ledger"}
# the stage whose page shows a section's findings (the ledger's `section` column; its first number decides)
SECTION_STAGES = {"3": "theory_discrete", "4.1": "theory_discrete", "6.1": "toy2d", "6.2": "stability",
                  "9.5": "stability", "6.3": "images", "6.4": "translation", "6.5": "ood"}
VERDICT_ORDER = ("fails", "inconclusive", "not run", "holds")   # the index lists the findings in this order
# JupyterLab's nbconvert template with each code cell's source folded into <details> (open it to read the code)
FOLDED_CODE = """{%- extends 'lab/index.html.j2' -%}
{% block input_group -%}
<details class="code"><summary>code</summary>
{{ super() }}
</details>
{%- endblock input_group %}
"""


def stage_files(params_file, stages) -> dict[str, dict]:
    """{stage: {"notebook", "run_info"}} from params.yaml (the paths each stage writes)."""
    path = Path(params_file)
    if not path.is_file():
        raise ConfigError(f"parameters file {path} does not exist")
    tree = yaml.safe_load(path.read_text()) or {}
    out = {}
    for st in stages:
        sec = tree.get(st)
        if not isinstance(sec, dict) or "executed_notebook" not in sec:
            raise ConfigError(f"{path} has no section {st!r} with an executed_notebook")
        out[st] = {"notebook": Path(sec["executed_notebook"]), "run_info": Path(sec.get("run_info_path", ""))}
    return out


def _data_digest(data_dvc) -> str | None:
    p = Path(data_dvc)
    if not p.is_file():
        return None
    outs = (yaml.safe_load(p.read_text()) or {}).get("outs") or [{}]
    md5 = outs[0].get("md5")
    return f"data.dvc md5 {md5[:12]}" if md5 else None


def provenance(stage: str, run_info_path, data_dvc, profile: str) -> dict:
    """What made a stage's outputs, from its run record (run_info.json)."""
    p = Path(run_info_path)
    info = json.loads(p.read_text()) if p.is_file() else {}
    params = info.get("params", {})
    git = info.get("git") or {}
    digest = hashlib.sha1(json.dumps(params, sort_keys=True, default=str).encode()).hexdigest()[:10] if params else "?"
    return {"stage": stage, "profile": profile, "params": params, "params_digest": f"sha1 {digest}",
            "commit": git.get("commit"), "commit_short": (git.get("commit") or "?")[:10], "dirty": git.get("dirty"),
            "data": _data_digest(data_dvc) if stage in DATA_STAGES else None,
            "wall_time_s": info.get("wall_time_s"), "written": info.get("written"), "packages": info.get("packages", {})}


def stamp_notebook(nb, prov: dict, page_name: str) -> tuple[object, int]:
    """A copy of the executed notebook with an anchor before every code cell and a provenance stamp after
    every figure; returns (notebook, number of figures)."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    cells, n_fig = [], 0
    params_html = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                          for k, v in prov["params"].items())
    head = (f"<div class=\"stamp\">Stage <b>{html.escape(prov['stage'])}</b> · profile {html.escape(str(prov['profile']))}"
            f" · commit {html.escape(prov['commit_short'])} · {html.escape(prov.get('data') or 'no versioned data')}"
            f" · written {html.escape(str(prov.get('written')))}</div>"
            f"<details><summary>parameters ({html.escape(prov['params_digest'])})</summary><table>{params_html}</table>"
            f"</details>")
    cells.append(nbformat.v4.new_markdown_cell(head))
    count = 0
    injected = any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    for cell in nb.cells:
        if injected and "parameters" in cell.metadata.get("tags", []):
            continue   # the notebook's defaults: the stage ran with the injected cell's values, shown instead
        if cell.cell_type != "code":
            cells.append(cell)
            continue
        count += 1
        cells.append(nbformat.v4.new_markdown_cell(f'<a id="cell-{count}"></a>'))
        cell.outputs = [o for o in cell.get("outputs", []) if not _progress_residue(o)]
        cells.append(cell)
        for out in cell.get("outputs", []):
            if "image/png" in out.get("data", {}):
                n_fig += 1
                cells.append(nbformat.v4.new_markdown_cell(P.stamp(prov, n_fig, count, page_name)))
    nb.cells = cells
    return nb, n_fig


PROGRESS = re.compile(r"\|\s*\d+/\d+ \[[^\]]*\]")   # a tqdm bar: "| 3/8 [00:05<00:08,  1.69s/it]"


def _progress_residue(output) -> bool:
    """A stderr stream made of progress-bar lines (or the blanks that clear them) only: they belong on the
    terminal, not on the page."""
    if output.get("output_type") != "stream" or output.get("name") != "stderr":
        return False
    lines = [ln for ln in re.split(r"[\r\n]+", output.get("text", "")) if ln.strip()]
    return all(PROGRESS.search(ln) for ln in lines)


def _render(nb) -> str:
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(template_name="lab")
    exporter.raw_template = FOLDED_CODE
    exporter.mathjax_url = ""        # no network: math stays as TeX source
    body, _ = exporter.from_notebook_node(nb)
    return body


def _thumbs(nb, page_name: str, limit: int = 6) -> str:
    out, n = [], 0
    for cell in nb.cells:
        for o in cell.get("outputs", []) if cell.cell_type == "code" else []:
            png = o.get("data", {}).get("image/png")
            if png:
                n += 1
                if n <= limit:
                    out.append(f'<a href="{page_name}#fig-{n}"><img class="thumb" alt="figure {n}" '
                               f'src="data:image/png;base64,{png.strip()}"></a>')
    return "".join(out)


def build_report(out_dir, *, params_file="params.yaml", stages=STAGES, findings_table="outputs/findings/findings.md",
                 data_dvc="data.dvc", profile: str = "default") -> dict:
    """Write the site to out_dir (index.html + one page per stage); returns {"pages", "figures", "missing"}.

    A stage whose executed notebook is missing is listed as not run (the index says so); a missing findings
    table is an error (the report opens with it).
    """
    stages = parse_list("stages", ",".join(stages) if not isinstance(stages, str) else stages, list(STAGES))
    stages = sorted(stages, key=STAGES.index)   # the paper's order (6.4 before 6.5), whatever order was given
    files = stage_files(params_file, stages)
    table = Path(findings_table)
    if not table.is_file():
        raise DataError(f"the findings table {table} does not exist: run the findings stage first (dvc repro findings)")
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    nav = [("index", "index.html")] + [(st, f"{st}.html") for st in stages]
    provs, missing, figures = [], [], 0
    thumbs = []
    for st in stages:
        nb_path = files[st]["notebook"]
        if not nb_path.is_file():
            missing.append(st)
            continue
        page_name = f"{st}.html"
        prov = provenance(st, files[st]["run_info"], data_dvc, profile) | {"page": page_name}
        nb = nbformat.read(nb_path, as_version=4)
        stamped, n_fig = stamp_notebook(nb, prov, page_name)
        prov["n_figures"] = n_fig
        figures += n_fig
        body = _render(stamped)
        body = body.replace("<body", f"<body data-stage=\"{st}\"", 1)
        links = " ".join(f'<a href="{h}">{n}</a>' for n, h in nav)
        body = body.replace("</body>", f"<nav>{links}</nav></body>", 1)
        (tmp / page_name).write_text(body)
        provs.append(prov)
        thumbs.append(f"<h3><a href=\"{page_name}\">{html.escape(TITLES[st])}</a></h3>{_thumbs(nb, page_name)}")
    summary, rows = FT.findings_rows(table.read_text())
    index = (f"<h1>Soft-IntroVAE, reproduced: the report</h1>"
             f"<p id=\"summary\">{html.escape(summary)}</p>"
             + (f"<p>Not run: {', '.join(missing)}</p>" if missing else "")
             + "<h2>By section of the paper</h2>"
             + P.section_table(section_counts(rows), {st: f"{st}.html" for st in stages if st not in missing})
             + "<h2>The sections' figures</h2>" + "".join(thumbs)
             + "<h2>The findings, failures first</h2>"
             + f"<div id=\"findings\">{P.markdown_html(ordered_table(rows))}</div>"
             + "<h2 id=\"provenance\">Where each page comes from</h2>" + P.provenance_table(provs))
    index = re.sub(r"<td>\s*<strong>(holds|fails|inconclusive|not run)</strong>\s*</td>",
                   lambda m: f'<td class="{m.group(1).replace(" ", "-")}"><b>{m.group(1)}</b></td>', index)
    (tmp / "index.html").write_text(P.page("Soft-IntroVAE report", index, nav))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return {"pages": ["index.html"] + [p["page"] for p in provs], "figures": figures, "missing": missing}


def ordered_table(rows: list[dict]) -> str:
    """The findings table as markdown, failures first (then inconclusive, not run, holds; ledger order within)."""
    rank = {v: i for i, v in enumerate(VERDICT_ORDER)}
    head = ["| finding | section | verdict | checked | ours | paper | band | along the runs |",
            "|---|---|---|---|---|---|---|---|"]
    return "\n".join(head + [r["line"] for r in sorted(rows, key=lambda r: rank.get(r["verdict"], len(rank)))])


def section_counts(rows: list[dict]) -> list[dict]:
    """[{"section", "stage", holds, inconclusive, fails, not run}] per section of the paper, in its order."""
    out = []
    for entry in FT.section_counts(rows):
        first = entry["section"].split("/")[0].split(" ")[0]
        out.append({**entry, "stage": SECTION_STAGES.get(first) or SECTION_STAGES.get(first.split(".")[0])})
    return out


def check_site(site) -> list[str]:
    """Broken links and images of a built site: every relative href/src names a file of the site (and an
    anchor that exists in it); images are embedded (data:) or files. Returns the problems found."""
    from html.parser import HTMLParser

    site = Path(site)
    pages = {p.name: p.read_text() for p in site.glob("*.html")}
    ids = {name: set(re.findall(r'id="([^"]+)"', text)) for name, text in pages.items()}
    problems = []

    class Links(HTMLParser):
        def __init__(self, page):
            super().__init__()
            self.page, self.refs = page, []

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "a" and a.get("href"):
                self.refs.append(("link", a["href"]))
            if tag == "img":
                self.refs.append(("image", a.get("src") or ""))

    for name, text in pages.items():
        parser = Links(name)
        parser.feed(text)
        for kind, ref in parser.refs:
            if ref.startswith(("data:image/", "https://", "http://", "mailto:")):
                continue
            target, _, anchor = ref.partition("#")
            target = target or name
            if not (site / target).is_file():
                problems.append(f"{name}: {kind} {ref!r} points to a missing file")
            elif anchor and target in ids and anchor not in ids[target]:
                problems.append(f"{name}: {kind} {ref!r} points to a missing anchor")
            elif kind == "image" and not ref:
                problems.append(f"{name}: an image without a source")
    return problems
