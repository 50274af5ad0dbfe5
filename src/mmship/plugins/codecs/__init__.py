"""Built-in payload codecs: Open Inference Protocol v2 (JSON and binary) and ``/embed``."""
