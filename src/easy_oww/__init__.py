"""easy-oww: openWakeWord training data, downloaded reliably, plus a Freesound sample library."""

__version__ = "0.1.0"
