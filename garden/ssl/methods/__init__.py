"""The self-supervised methods, by group; importing this package registers them under task "ssl"."""

from garden.ssl.methods import clustering, contrastive, negative_free, pretext  # noqa: F401
from garden.ssl.methods._base import SSLModel, build_encoder, momentum_schedule
from garden.ssl.methods.clustering import SwAV
from garden.ssl.methods.contrastive import CPC, MoCoV2, SimCLR
from garden.ssl.methods.negative_free import BYOL, BarlowTwins, SimSiam
from garden.ssl.methods.pretext import Colorization, Jigsaw, Lightness, RotNet, maximal_hamming_permutations, rgb_to_lab

__all__ = [
    "BYOL",
    "CPC",
    "BarlowTwins",
    "Colorization",
    "Jigsaw",
    "Lightness",
    "MoCoV2",
    "RotNet",
    "SSLModel",
    "SimCLR",
    "SimSiam",
    "SwAV",
    "build_encoder",
    "maximal_hamming_permutations",
    "momentum_schedule",
    "rgb_to_lab",
]
