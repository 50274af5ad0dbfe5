"""mmship-siglip: a third-party mmship adapter for SigLIP (``SiglipModel``)."""

__version__ = "0.1.0"
