"""The paper's printed numbers and the methods' names, in one place.

Soft-IntroVAE (Daniel & Tamar, CVPR 2021), as transcribed from the paper's text (its equations are
restated in docs/EQUATIONS.md).
Every section reads its paper values from here, and so does the findings ledger (sivae.findings),
which compares our runs with them. Nothing here is computed by us.

- METHODS, METHOD_TITLES: the three methods and their display names (and the class-conditional
  Soft-IntroVAE of the images section); IMAGE_METHOD_TITLES adds the images section's other run keys
  (the style-based pair, STYLE_PREFIX + method, and the authors' released weights, RELEASED_KEY).
- TABLE5: the best 2D hyper-parameters (Table 5); PAPER_TABLE2: the 2D metrics (Table 2).
- PAPER_FID: the image FIDs (sections 6.3, 9.4.1); PAPER_TRAINING: the image training lengths (9.2.2).
- PAPER_TABLE7: the out-of-distribution AUROCs (Table 7, Appendix 9.7).
- PAPER_TABLE4: the image-translation scores (Table 4; not in our text copy).
"""
from __future__ import annotations

__all__ = ["METHODS", "METHOD_TITLES", "STYLE_PREFIX", "RELEASED_KEY", "IMAGE_METHOD_TITLES", "TABLE5",
           "PAPER_TABLE2", "PAPER_FID", "PAPER_TRAINING", "PAPER_TABLE7", "PAPER_TABLE4"]

METHODS = ("vae", "introvae", "soft_intro_vae")
# Display names of the methods (and of the class-conditional Soft-IntroVAE of the images section).
METHOD_TITLES = {"vae": "VAE", "introvae": "IntroVAE", "soft_intro_vae": "Soft-IntroVAE",
                 "soft_intro_vae_cond": "Soft-IntroVAE (cond.)"}
STYLE_PREFIX = "style_"   # run keys of the images section's style-based pair: style_<method>
RELEASED_KEY = "released_soft_intro_vae"   # run key of a model loaded from the authors' released weights
# The images section's run keys: the methods, the style-based pair and the authors' weights.
IMAGE_METHOD_TITLES = {**METHOD_TITLES, **{STYLE_PREFIX + m: f"{METHOD_TITLES[m]} (style-based)" for m in METHODS},
                       RELEASED_KEY: "Soft-IntroVAE (authors' weights)"}

# Table 5: best 2D hyper-parameters (beta_rec, beta_kl, beta_neg, m); None where unused.
TABLE5 = {
    ("8gaussians", "vae"): (0.8, 0.05, None, None),
    ("8gaussians", "introvae"): (0.3, 0.5, 1.0, 1.0),
    ("8gaussians", "soft_intro_vae"): (0.2, 0.3, 0.9, None),
    ("spiral", "vae"): (1.0, 0.05, None, None),
    ("spiral", "introvae"): (0.2, 0.5, 0.5, 2.0),
    ("spiral", "soft_intro_vae"): (0.2, 0.5, 1.0, None),
    ("checkerboard", "vae"): (0.8, 0.1, None, None),
    ("checkerboard", "introvae"): (0.4, 0.2, 0.2, 8.0),
    ("checkerboard", "soft_intro_vae"): (0.2, 0.1, 0.2, None),
    ("rings", "vae"): (0.8, 0.05, None, None),
    ("rings", "introvae"): (0.8, 0.5, 0.5, 5.0),
    ("rings", "soft_intro_vae"): (0.2, 0.2, 1.0, None),
}

# Table 2 of the paper (mean, std over seeds; VAE, IntroVAE, Soft-IntroVAE), as printed: the paper rescaled these values.
PAPER_TABLE2 = {
    "8gaussians": {"gnelbo": [(7.42, .07), (1.29, .76), (1.25, .35)], "kl": [(6.72, .46), (2.53, 1.07), (1.25, .11)],
                   "jsd": [(16.04, .3), (1.67, .46), (0.96, .15)]},
    "spiral": {"gnelbo": [(6.19, .06), (5.87, .03), (5.21, .04)], "kl": [(9.8, .48), (8.38, .45), (8.13, .3)],
               "jsd": [(4.89, .05), (3.58, .04), (3.37, .04)]},
    "checkerboard": {"gnelbo": [(8.53, .1), (8.54, .11), (4.47, .29)], "kl": [(20.91, .45), (19.03, .34), (20.27, .21)],
                     "jsd": [(9.78, .04), (9.07, .1), (9.06, .15)]},
    "rings": {"gnelbo": [(6.4, .04), (7.25, .18), (6.3, .08)], "kl": [(13.16, .55), (10.21, .49), (9.18, .33)],
              "jsd": [(7.26, .07), (4.24, .11), (4.13, .09)]},
}

# The paper's image FIDs (section 6.3 and 9.4.1; 50,000 samples vs the training set). The paper
# reports none for MNIST / Fashion-MNIST.
PAPER_FID = {("cifar10", "soft_intro_vae"): 4.6, ("cifar10", "soft_intro_vae_cond"): 4.07,
             ("cifar10", "released_soft_intro_vae"): 4.6, ("celeba-hq", "released_soft_intro_vae"): 18.63,
             ("ffhq", "released_soft_intro_vae"): 17.55}
# Per-dataset training length and batch of the paper (Appendix 9.2.2: CIFAR-10 220 epochs, batch
# 32) and the public code's recommended settings (MNIST / Fashion-MNIST: 200 epochs, batch 128;
# SVHN: batch 32, trained like CIFAR-10). Used where the parameters say "paper".
PAPER_TRAINING = {"mnist": {"epochs": 200, "batch_size": 128}, "fashionmnist": {"epochs": 200, "batch_size": 128},
                  "cifar10": {"epochs": 220, "batch_size": 32}, "svhn": {"epochs": 220, "batch_size": 32}}

# Table 7 of the paper (Appendix 9.7): AUROC mean and std, {(in, ood): {method: (mean, std)}}.
# Transcribed from the paper text (shared/paper/soft-intro-vae.txt, the "±" signs were lost there).
PAPER_TABLE7 = {
    ("mnist", "fashionmnist"): {"vae": (0.992, 0.002), "soft_intro_vae": (0.999, 0.0002)},
    ("fashionmnist", "mnist"): {"vae": (0.996, 0.0009), "soft_intro_vae": (0.999, 0.0004)},
    ("cifar10", "svhn"): {"vae": (0.378, 0.01), "soft_intro_vae": (0.9987, 0.008)},
}

# Table 4 (Cars3D, content transfer, LPIPS; lower is better). The numbers did not survive the
# conversion of our copy of the paper to text, so none are printed; fill them in from the PDF.
PAPER_TABLE4 = {"LORD [13] (class labels)": None, "S-IntroVAE (no labels)": None}
