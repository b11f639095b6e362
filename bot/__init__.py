"""Concierge: match a plain-language need to the IT offering that fulfils it."""

import os

# Set before numpy loads its BLAS. A question's arithmetic is a few small matrix-vector
# products; BLAS worker threads spinning after each one took the CPU from the embedding model
# (20 ms became 45 ms per question on 2 cores), and gunicorn runs several workers per host.
# `setdefault`: an operator's own setting wins. (Torch's threads are set in
# bot.matching.embeddings.)
for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# The encoder runs batches on threads of its own. The tokenizers library's thread pool, once
# started in gunicorn's master (which loads the model before forking), would be unusable in
# the workers: it disables itself there with a warning on every worker's stderr.
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__version__ = "0.1.0"
