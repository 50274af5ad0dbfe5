"""Preprocessing aligned with the Hugging Face processors (a library): the pixel pipeline
(:mod:`.pixels`) and tokenization (:mod:`.tokens`). They need only numpy, Pillow and
tokenizers, never torch or transformers; the build measures them against HF."""
