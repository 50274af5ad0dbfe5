"""Built-in model-family adapters (CLIP, FLAVA, BERT+ViT fusion), each a plugin."""
