"""Section 6.1 (2D toy datasets: Figure 2, Table 2) and the Table 5 grid search.

Modules:
    config     Toy2dConfig: the stage's parameters, parsed once; RunSpec: one run and its TrainConfig
    data       8 Gaussians, Spiral, Checkerboard, Rings (seeded samplers)
    models     the 2D MLP encoder and decoder
    metrics    the paper's KL / JSD / grid-normalised ELBO, the textbook JSD, density grids
    study      training every (dataset, method, seed) with Table 5's hyper-parameters, Table 2
    plots      Figure 2, training curves, the ipywidgets explorer
    sweep      the Table 5 grid search as DVC experiments
"""
