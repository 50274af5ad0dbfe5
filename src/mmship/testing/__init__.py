"""Offline stand-ins for hub downloads: tiny tokenizers and random-weight models.

For tests, demos and benchmarks on machines without Hugging Face Hub access. Random
weights give meaningless embeddings at the real model's cost.
"""
