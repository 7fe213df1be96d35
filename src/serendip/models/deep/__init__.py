"""Deep models (torch, imported lazily): NeuMF, Mult-VAE, RecVAE and SASRec.

CPU by default; a CUDA device is used when `device="auto"` and torch sees one. Training is seeded
and, on CPU, deterministic; early stopping watches NDCG@10 on a validation carve of the training
data. Weights are saved as NumPy arrays and the module is rebuilt on load (no pickle).
"""

from serendip.models.deep._neumf import NeuMF, NeuMFConfig
from serendip.models.deep._recvae import RecVAE, RecVAEConfig
from serendip.models.deep._sasrec import SASRec, SASRecConfig
from serendip.models.deep._vae import MultVAE, MultVAEConfig

__all__ = [
    "MultVAE",
    "MultVAEConfig",
    "NeuMF",
    "NeuMFConfig",
    "RecVAE",
    "RecVAEConfig",
    "SASRec",
    "SASRecConfig",
]
