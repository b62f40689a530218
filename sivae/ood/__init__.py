"""Section 6.5 (out-of-distribution detection: Table 7, Figure 8).

Uses the models of the images section (sivae.images), trained by its stage or here.

Modules:
    config     OodConfig: the stage's parameters (notebook 06, params.yaml `ood`), parsed and checked once
    metrics    importance-weighted log-likelihood, AUROC, histograms, Table 7
    study      which models to score on which pairs, loading or training them
    plots      Figure 8, and the beyond-the-paper score histograms
    scores     beyond the paper: input complexity (PNG), likelihood ratio, likelihood regret, typicality, FPR@95
    near       beyond the paper: near-OOD pairs (held-out class, transformed images, noise, constant), their study
"""
