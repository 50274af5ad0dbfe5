"""Payload codecs: how images, texts and tensors travel over HTTP.

* :mod:`.binary`: Triton's binary tensor data extension (framing, pure functions);
* :mod:`.tensors`: v2 tensor entries <-> numpy; :mod:`.datatypes`: v2 datatypes;
* :mod:`.images`: encoded images (never raw pixels), base64 and data URIs;
* :mod:`.v2`: Open Inference Protocol v2, JSON and binary (plugin ``payload-v2``);
* :mod:`.embed`: the ``/embed`` and ``/classify`` JSON routes (plugin ``payload-embed``).

Nothing here imports FastAPI or httpx: the server and the client both use these.
"""

from __future__ import annotations

__all__ = ["binary", "datatypes", "embed", "images", "tensors", "v2"]
