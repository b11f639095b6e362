"""Concierge: match a plain-language need to the IT offering that fulfils it."""

import os

# Set before numpy loads its BLAS. A question's arithmetic is a few small matrix-vector
# products; BLAS worker threads spinning after each one took the CPU from the embedding model
# (20 ms became 45 ms per question on 2 cores), and gunicorn runs several workers per host.
# `setdefault`: an operator's own setting wins. (Torch's threads are set in
# bot.matching.embeddings.)
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

__version__ = "0.1.0"
