"""Section 6.3 (image generation: samples, reconstructions, interpolations, FID).

Modules:
    data       MNIST / Fashion-MNIST / CIFAR-10 / SVHN and image folders; `python -m sivae.images.data`
    models     IntroVAE's residual encoder and decoder per image size (conditional variant)
    style      the style-based pair (StyleGAN-like decoder, ALAE-like encoder, progressive growing, fade-in)
    released   the authors' released weights (style-based CelebA-HQ/FFHQ, residual CIFAR-10) into these networks
    training   training through the one Trainer (residual and style-based, progressive growing), loading
    sampling   what a trained model does: samples, reconstructions, interpolations, latent walks
    __main__   `python -m sivae.images`: train one model from the command line (also under torchrun)
    metrics    Frechet distances: FID (Inception, when its weights exist) or a labelled classifier FD
    config     ImagesConfig: notebook 04's parameters, parsed and checked once, passed whole to study
    study      the runs of the notebook, their scores, the metrics file and the markdown table
    plots      image grids, training curves, the ipywidgets interpolation slider
"""
