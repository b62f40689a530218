"""Section 6.4 (unsupervised image translation, Table 4, Figures 7, 19, 20; Appendix 9.3).

Modules:
    models      the two-encoder / AdaIN-decoder networks (Figure 4(b)), wrapped for the one Trainer
    render      a small ray caster: toy cars with known identity and pose
    data        procedural dataset, Cars3D (.mat) and KTH (frames) loaders, batch function
    perceptual  pixel MSE or VGG perceptual reconstruction (never a silent fallback)
    metrics     content transfer vs ground truth (MSE, SSIM, optional LPIPS), leakage probes
    config      TranslationConfig: the stage's parameters, parsed and checked once; check_files
    study       training both models, evaluation, metrics and the Table 4 markdown
    plots       translation grids and the KL of both codes over training
"""
