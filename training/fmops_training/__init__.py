"""Shared code of fmops' training, evaluation and serving scripts.

The light modules (``contract``, ``data``, ``metrics_log``, ``errors``, ``runtime``) import without
torch, so bad input fails fast; ``modeling``, ``loop`` and the job modules import torch and transformers.
"""

__version__ = "0.1.0"
