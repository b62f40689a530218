"""The findings ledger: which of the paper's findings hold in our run (the final `findings` stage).

Reads the metrics of every other stage (never their code's results directly), so it runs last.

Modules:
    study      the findings, the decision rule, the ledger (outputs/findings.json, a markdown table)
    plots      one figure: the verdicts by paper section
    table      the ledger table read back: counts per section, the README's and docs' copies
"""
