"""The findings ledger: the decision rule, the findings' metric names, the gathering."""
import json

import pytest
from nbutil import ROOT

from sivae import DataError
from sivae.findings import study as F
from sivae.findings.study import Stat, band, combine, compare, threshold

S = lambda m, s=0.1, n=3: Stat(m, s, n)  # noqa: E731


@pytest.mark.parametrize("low, high, verdict", [
    (S(1.0), S(2.0), "holds"),              # below by 1.0 > sqrt(0.01 + 0.01)
    (S(2.0), S(1.0), "fails"),              # reversed beyond the spread
    (S(1.0), S(1.1), "inconclusive"),       # inside the spread
    (S(1.0, n=1), S(9.0, n=1), "inconclusive"),  # one seed never holds: no spread to compare with
    (S(9.0, n=1), S(1.0, n=1), "inconclusive"),
    (None, S(1.0), "not run"),
    (S(float("nan")), S(1.0), "inconclusive"),
    (threshold(0.99), S(0.995, 0.001), "holds"),
    (threshold(0.99), S(0.90, 0.01), "fails"),
    (threshold(0.99), S(0.90, 0.0, n=1), "inconclusive"),
])
def test_decision_rule_reaches_each_verdict(low, high, verdict):
    assert compare(low, high) == verdict


def test_combination_and_bands():
    assert combine(["holds", "holds"]) == "holds"
    assert combine(["holds", "fails", "inconclusive"]) == "fails"
    assert combine(["holds", "inconclusive"]) == "inconclusive"
    assert combine(["not run", "not run"]) == "not run" and combine([]) == "not run"
    assert band(S(1.3), (1.25, 0.11)) == "in band" and band(S(2.0), (1.25, 0.11)) == "out of band"
    assert band(None, (1, 1)) == "not run"


def _fake_stages(sivae_kl, vae_kl, n=2):
    keys = ("kl", "jsd", "gnelbo_x1e7", "off_support_mass")
    toy = {d: {m: {k: 1.0 for k in keys} | {f"{k}_std": 0.1 for k in keys} for m in ("vae", "introvae", "soft_intro_vae")}
        for d in F.DATASETS_2D}
    toy["8gaussians"]["soft_intro_vae"]["kl"] = sivae_kl
    toy["8gaussians"]["vae"]["kl"] = vae_kl
    return {"toy2d": {"metrics": toy, "params": {"n_seeds": n}}}


def test_ledger_judges_constructed_metrics():
    led = {f.id: f for f in F.build_ledger(_fake_stages(1.0, 5.0))}
    assert led["6.1-kl-sivae-below-vae-8gaussians"].verdict == "holds"
    assert led["6.1-kl-sivae-below-vae-8gaussians"].band == "out of band"  # paper: 1.25 ± 0.11
    assert {f.id: f for f in F.build_ledger(_fake_stages(1.3, 5.0))}["6.1-kl-sivae-below-vae-8gaussians"].band == "in band"
    led = {f.id: f for f in F.build_ledger(_fake_stages(5.0, 1.0))}
    assert led["6.1-kl-sivae-below-vae-8gaussians"].verdict == "fails"
    led = {f.id: f for f in F.build_ledger(_fake_stages(1.0, 5.0, n=1))}
    assert led["6.1-kl-sivae-below-vae-8gaussians"].verdict == "inconclusive"
    assert led["6.5-sivae-auroc-above-vae-mnist-to-fashionmnist"].verdict == "not run"  # no ood stage


def test_a_mean_without_its_spread_counts_as_one_seed():
    """A stage that writes a seed mean without `<key>_std` gives the ledger no spread: never `holds`."""
    stage = lambda vae, soft: {"stability": {"metrics": {"collapse": {"vae": vae, "soft_intro_vae": soft}},  # noqa: E731
                                             "params": {"n_seeds": 3}}}
    key = "9.5-sivae-kl-real-does-not-collapse"
    led = {f.id: f for f in F.build_ledger(stage({"kl_real_final": 0.0}, {"kl_real_final": 1.0}))}
    assert led[key].verdict == "inconclusive" and "(n=1)" in led[key].ours["VAE"]
    led = {f.id: f for f in F.build_ledger(stage({"kl_real_final": 0.0, "kl_real_final_std": 0.01},
                                                 {"kl_real_final": 1.0, "kl_real_final_std": 0.1}))}
    assert led[key].verdict == "holds"


def test_ids_are_unique_and_every_section_is_covered():
    ids = [f.id for f in F.build_ledger({})]
    assert len(ids) == len(set(ids))
    assert {f.section for f in F.build_ledger({})} >= {"4.1/9.6", "6.1", "6.2", "9.5", "6.3", "6.4", "6.5"}
    assert all(f.verdict == "not run" for f in F.build_ledger({}))


@pytest.mark.parametrize("stage, keys", list(F.required_metrics().items()))
def test_every_finding_reads_metrics_its_stage_writes(stage, keys):
    """Against the committed default run's metrics: a renamed metric would turn a finding into 'not run'."""
    metrics = json.loads((ROOT / "outputs" / stage / "metrics.json").read_text())
    for path in keys:
        node = metrics
        for k in path:
            assert isinstance(node, dict) and k in node, f"{stage} metrics.json lacks {'/'.join(path)}"
            node = node[k]


def test_the_ledger_file_is_a_dvc_metrics_file(tmp_path):
    findings = F.build_ledger(_fake_stages(1.0, 5.0))
    out = F.write_ledger(findings, tmp_path / "f.json", tmp_path / "f.md", "default", tmp_path / "details.json")
    data = json.loads((tmp_path / "f.json").read_text())
    assert data["findings"]["6.1-kl-sivae-below-vae-8gaussians"] == 1 and data == out

    def leaves(node):
        return [x for v in node.values() for x in leaves(v)] if isinstance(node, dict) else [node]
    # numbers only (issue 33: strings made `dvc metrics show` 74,600 characters wide); the texts go beside it
    assert all(v is None or (isinstance(v, int | float) and not isinstance(v, bool)) for v in leaves(data)), data
    details = json.loads((tmp_path / "details.json").read_text())
    assert details["profile"] == "default" and set(details["details"]) == set(data["findings"])
    assert details["details"]["6.1-kl-sivae-below-vae-8gaussians"]["verdict"] == "holds"
    assert data["counts"]["holds"] + data["counts"]["inconclusive"] + data["counts"]["fails"] \
        + data["counts"]["not run"] == data["n_findings"] == len(findings)
    assert (tmp_path / "f.md").read_text().startswith(f"**{F.summary_line(findings, 'default')}**")


def test_printed_fids_are_judged_only_with_inception_features():
    key = "6.3-fid-cifar10-soft_intro_vae"
    stage = lambda e: {"images": {"metrics": {"cifar10": {"soft_intro_vae": e}}, "params": {"n_seeds": 1}}}  # noqa: E731
    assert {f.id: f for f in F.build_ledger({})}[key].verdict == "not run"
    led = {f.id: f for f in F.build_ledger(stage({"fd_classifier": 4.6}))}   # not FID: never compared with 4.6
    assert led[key].verdict == "not run" and led[key].paper == "4.6"
    led = {f.id: f for f in F.build_ledger(stage({"fid": 4.9, "fid_authors_code": 4.4}))}
    assert led[key].verdict == "holds" and led[key].band == "in band"
    assert led[key].ours["FID, authors' code protocol"] == "4.4"
    led = {f.id: f for f in F.build_ledger(stage({"fid": 25.86}))}
    assert led[key].verdict == "fails" and led[key].band == "out of band"
    assert {"6.3-fid-celeba-hq-released_soft_intro_vae", "6.3-fid-ffhq-released_soft_intro_vae"} <= set(
        f.id for f in F.build_ledger({}))


@pytest.mark.parametrize("reaches, verdict", [(False, "holds"), (True, "fails")])
def test_the_theory_contrast_row_is_judged_as_the_papers_critique_of_introvae(reaches, verdict):
    """The theory notebook's contrast row asks whether IntroVAE's full game (Eq. 2) ends at p_data; the paper says
    its analysis covers only Eq. 3, so the paper's statement holds when it does not. The claims keep their ids."""
    claims = {"d* = p_data at gamma = 0": True, "(contrast) IntroVAE, Eq. 2 with m=1: p_d -> p_data": reaches,
              "H(d*) non-increasing in gamma": False}
    led = {f.id: f for f in F.build_ledger({"theory_discrete": {"metrics": {"claim_verdicts": claims}}})}
    assert led["4.1-introvae-eq2-not-covered-by-its-analysis"].verdict == verdict
    assert led["4.1-theory-claim-01"].verdict == "holds" and led["4.1-theory-claim-03"].verdict == "fails"
    assert "4.1-theory-claim-02" not in led


TABLE = """**2 of 4 findings hold at the default profile; 1 inconclusive; 1 not run; 0 fail.**

| finding | section | verdict | checked | ours | paper | band | along the runs |
|---|---|---|---|---|---|---|---|
| `6.1-a` | 6.1 | **holds** | c | o |  |  |  |
| `6.1-b` | 6.1 | **inconclusive** | c | o |  |  |  |
| `4.1-c` | 4.1/9.6 | **holds** | c | o |  |  |  |
| `beyond-6.5-d` | 6.5 (beyond the paper) | **not run** | c | o |  |  |  |
"""


def test_the_readme_summary_counts_each_section_in_the_papers_order_and_keeps_beyond_rows_apart():
    from sivae.findings.table import summary_markdown
    text = summary_markdown(TABLE)
    assert text.splitlines()[0] == ("**2 of 3 of the paper's findings hold at the default profile**; 1 inconclusive, "
                                    "0 fail, 0 not run. Beyond the paper: 0 of 1 hold; 0 inconclusive, 0 fail, 1 not run.")
    rows = [ln for ln in text.splitlines() if ln.startswith("| ") and not ln.startswith("| section")]
    assert rows == ["| 4.1/9.6 | 1 | 0 | 0 | 0 |", "| 6.1 | 1 | 1 | 0 | 0 |", "| 6.5 (beyond the paper) | 0 | 0 | 0 | 1 |"]
    with pytest.raises(DataError, match="no rows"):
        summary_markdown("**nothing**\n")


def test_sync_docs_writes_the_summary_and_the_table_between_their_markers_and_says_what_is_wrong(tmp_path):
    from sivae.findings.table import BEGIN, END, summary_markdown, sync_docs
    table, readme, docs = tmp_path / "findings.md", tmp_path / "README.md", tmp_path / "findings_doc.md"
    table.write_text(TABLE)
    s, w = "findings summary", "findings table"
    readme.write_text(f"intro\n{BEGIN.format(what=s)}\nold\n{END.format(what=s)}\nrest\n")
    docs.write_text(f"top\n{BEGIN.format(what=w)}\nold\n{END.format(what=w)}\n")
    assert sync_docs(readme, docs, table, check=True) == [str(readme), str(docs)]
    assert "old" in readme.read_text() and "old" in docs.read_text()          # check: nothing written
    assert sync_docs(readme, docs, table) == [str(readme), str(docs)]
    assert readme.read_text() == f"intro\n{BEGIN.format(what=s)}\n{summary_markdown(TABLE)}\n{END.format(what=s)}\nrest\n"
    assert docs.read_text() == f"top\n{BEGIN.format(what=w)}\n{TABLE.strip()}\n{END.format(what=w)}\n"
    assert sync_docs(readme, docs, table) == []                                # current: nothing to do
    readme.write_text("no markers\n")
    with pytest.raises(DataError, match="needs the two lines"):
        sync_docs(readme, docs, table)
    with pytest.raises(DataError, match="run the findings stage first"):
        sync_docs(readme, docs, tmp_path / "missing.md")


def test_the_margin_plot_rows_overlay_introvae_and_soft_introvae(tmp_path):
    """dvc.yaml's stability plots read these rows: one per margin, sorted by m, Soft-IntroVAE's values on each."""
    from sivae.findings.plots import write_margin_rows
    st = {"metrics": {"margin_sweep": {"m_10": {"kl_fake_final": 9.5, "kl": 20.0}, "m_0p1": {"kl_fake_final": 0.2, "kl": 30.0}},
                      "soft_intro_vae": {"kl_fake_final": 1.5, "kl": 12.0}}}
    rows = write_margin_rows(st, tmp_path / "m.json")
    assert [r["m"] for r in rows] == [0.1, 10.0] and rows == json.loads((tmp_path / "m.json").read_text())
    assert rows[0] == {"m": 0.1, "margin_m": 0.1, "introvae_kl_fake": 0.2, "introvae_kl": 30.0,
                       "soft_intro_vae_kl_fake": 1.5, "soft_intro_vae_kl": 12.0}
    assert write_margin_rows(None, tmp_path / "none.json") == []
