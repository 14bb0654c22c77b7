"""Data sets: streaming validation, deterministic stratified splits, prepared files and manifests.

Pure Python and streaming: a data set is read once, line by line, never held in memory whole.
"""
