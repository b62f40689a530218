"""The report: a static HTML site of every stage (the final `report` stage).

Reads what the other stages wrote (executed notebooks, run records, the findings table); needs no network
to build or to view.

Modules:
    study      gather the stages' outputs and their provenance, build the site (outputs/report/)
    plots      how it looks: the page template, the findings table, the provenance stamp of each figure
"""
