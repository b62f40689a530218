"""Section 6.3 (image generation: samples, reconstructions, interpolations, FID).

Modules:
    data       MNIST / Fashion-MNIST / CIFAR-10 / SVHN and image folders; `python -m sivae.images.data`
    models     IntroVAE's residual encoder and decoder per image size (conditional variant)
    training   training through the one Trainer, sampling, reconstruction, interpolation;
               `python -m sivae.images.training` (also under torchrun)
    metrics    Frechet distances: FID (Inception, when its weights exist) or a labelled classifier FD
    study      the runs of the notebook, their scores, the metrics file and the markdown table
    plots      image grids, training curves, the ipywidgets interpolation slider
"""
