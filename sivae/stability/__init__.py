"""Section 6.2 (training stability, Figure 3) and Appendix 9.5 (KL collapse, Figure 21).

Built on the 2D section (sivae.toy2d): same trainer, data, models and metrics.

Modules:
    config     StabilityConfig: the stage's parameters, parsed once, every grid point as a Toy2dConfig
    study      the margin and beta_neg sweeps, the collapse runs, their summaries and metrics
    plots      Figure 3, KL(fake) against m over training, Figure 21, the beta_neg sweep
"""
