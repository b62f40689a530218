"""The ledger's markdown table read back, counted per paper section, and copied into the docs.

The `findings` stage writes the whole table (outputs/findings/findings.md, sivae.findings.study.ledger_markdown).
Two copies of it are kept current by `make readme-findings` (a test checks both):
- README.md gets the short form: the headline counts and one row per paper section (`summary_markdown`);
- docs/findings.md gets the whole table.
Light on purpose (no torch): the report stage and the README test import it.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import DataError
from ..runinfo import write_text

__all__ = ["VERDICTS", "BEGIN", "END", "findings_rows", "section_counts", "summary_markdown", "sync_block",
           "sync_docs"]

VERDICTS = ("holds", "inconclusive", "fails", "not run")
BEYOND = "beyond the paper"   # the ledger's section label of rows that are ours, not the paper's
BEGIN = "<!-- BEGIN {what}: written by `make readme-findings` from outputs/findings/findings.md, do not edit -->"
END = "<!-- END {what} -->"


def findings_rows(text: str) -> tuple[str, list[dict]]:
    """(summary line, rows) of the findings stage's markdown table: each row {"line", "id", "section", "verdict"};
    the summary's markdown emphasis is removed."""
    lines = text.splitlines()
    summary = lines[0].strip().strip("*").strip() if lines else ""
    rows = []
    for line in lines[1:]:
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3:
            continue
        rows.append({"line": line, "id": cells[0].strip("`"), "section": cells[1],
                     "verdict": cells[2].strip("*").strip()})
    return summary, rows


def _section_key(section: str):
    first = section.split("/")[0].split(" ")[0]
    try:
        return (0, [int(x) for x in first.split(".")], section)
    except ValueError:
        return (1, [], section)


def section_counts(rows: list[dict]) -> list[dict]:
    """[{"section", holds, inconclusive, fails, not run}] per section of the ledger, in the paper's order."""
    out: dict[str, dict] = {}
    for r in rows:
        entry = out.setdefault(r["section"], {"section": r["section"], **{v: 0 for v in VERDICTS}})
        if r["verdict"] in VERDICTS:
            entry[r["verdict"]] += 1
    return [out[s] for s in sorted(out, key=_section_key)]


def summary_markdown(text: str) -> str:
    """The README's short form of the ledger table `text`: the headline, then one row per section."""
    summary, rows = findings_rows(text)
    if not rows:
        raise DataError("the findings table has no rows: run the findings stage (dvc repro findings)")
    m = re.search(r"at the (\S+) profile", summary)
    profile = f" at the {m.group(1)} profile" if m else ""
    paper = [r for r in rows if BEYOND not in r["section"]]
    ours = [r for r in rows if BEYOND in r["section"]]

    def tally(rs):
        n = {v: sum(r["verdict"] == v for r in rs) for v in VERDICTS}
        return n, f"{n['inconclusive']} inconclusive, {n['fails']} fail, {n['not run']} not run"

    n, rest = tally(paper)
    head = f"**{n['holds']} of {len(paper)} of the paper's findings hold{profile}**; {rest}."
    if ours:
        n2, rest2 = tally(ours)
        head += f" Beyond the paper: {n2['holds']} of {len(ours)} hold; {rest2}."
    lines = [head, "", "| section | holds | inconclusive | fails | not run |", "|---|---|---|---|---|"]
    for c in section_counts(rows):
        lines.append(f"| {c['section']} | " + " | ".join(str(c[v]) for v in VERDICTS) + " |")
    return "\n".join(lines)


def sync_block(path, what: str, body: str, check: bool = False) -> bool:
    """Put `body` between the BEGIN/END markers named `what` in the file `path`. Returns True when the copy there
    differed; check=True changes nothing (for a test). DataError naming the file when a marker is missing."""
    path = Path(path)
    begin, end = BEGIN.format(what=what), END.format(what=what)
    text = path.read_text()
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise DataError(f"{path} needs the two lines {begin!r} and {end!r} once each, in that order")
    head, rest = text.split(begin)
    _, tail = rest.split(end)
    new = f"{head}{begin}\n{body.strip()}\n{end}{tail}"
    if new != text and not check:
        write_text(new, path)
    return new != text


def sync_docs(readme, docs, table, check: bool = False) -> list[str]:
    """The README's summary and docs/findings.md's whole table from the ledger table; returns the files that
    differed (check=True: changes nothing)."""
    table = Path(table)
    if not table.is_file():
        raise DataError(f"{table} does not exist: run the findings stage first (dvc repro findings)")
    text = table.read_text()
    changed = []
    if sync_block(readme, "findings summary", summary_markdown(text), check):
        changed.append(str(readme))
    if sync_block(docs, "findings table", text, check):
        changed.append(str(docs))
    return changed


if __name__ == "__main__":   # python -m sivae.findings.table README.md docs/findings.md outputs/findings/findings.md
    import sys
    changed = sync_docs(*sys.argv[1:4])
    print("updated: " + ", ".join(changed) if changed else "README.md and docs/findings.md already current")
