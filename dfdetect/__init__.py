"""dfdetect: a multimodal (face + voice + their agreement) deepfake video detector."""

__version__ = "0.1.0"
