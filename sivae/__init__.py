"""sivae: a reproducible companion to Soft-IntroVAE (Daniel & Tamar, CVPR 2021).

Losses (sivae.losses), networks (sivae.models), one trainer for VAE / IntroVAE /
Soft-IntroVAE (sivae.train), 2D data and metrics (sivae.toydata, sivae.metrics) and the
experiments behind each notebook.
"""
from .errors import SivaeError, ConfigError, DataError, CheckpointError, DivergenceError
from .train import TrainConfig, Trainer, METHODS, resolve_device
from .models import MLPConfig, MLPEncoder, MLPDecoder, build_mlp_pair

__version__ = "0.1.0"
