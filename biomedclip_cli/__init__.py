"""bmclip: train CLIP-style models on biomedical image-caption data with OpenCLIP."""

__version__ = "0.1.0"
