"""Public face of the searchlight in :mod:`brainllm_utils.rsa`: neighbourhoods on volumes and
surfaces, the streaming searchlight RSA engine, and mapping results back."""

from .rsa import (
    pad_neighbourhoods,
    searchlight_rsa,
    sphere_offsets,
    surface_neighbourhoods,
    to_surface,
    to_volume,
    volume_neighbourhoods,
)

__all__ = [
    "sphere_offsets",
    "volume_neighbourhoods",
    "surface_neighbourhoods",
    "pad_neighbourhoods",
    "searchlight_rsa",
    "to_volume",
    "to_surface",
]
