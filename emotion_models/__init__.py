"""emotion-pipeline: speaker-independent emotion recognition from audio, faces and video."""

__version__ = "0.1.0"
