"""mmship's serving runtime: preprocessing aligned with the HF processor, ONNX Runtime
sessions, dynamic batching and the HTTP app.

The pixel and text pipelines (:mod:`.preprocessing`, :mod:`.tokenization`) need only
numpy, Pillow and tokenizers, never torch or transformers. Nothing is imported here, so
importing a submodule stays cheap.
"""
