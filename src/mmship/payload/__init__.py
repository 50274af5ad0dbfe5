"""Wire formats shared by the codecs, the server and the client (a library, not a plugin).

* :mod:`.binary`: Triton's binary tensor data extension (framing, pure functions);
* :mod:`.tensors`: v2 tensor entries <-> numpy; :mod:`.datatypes`: v2 datatypes;
* :mod:`.images`: encoded images (never raw pixels), base64 and data URIs.

The codec plugins (:mod:`mmship.plugins.codecs`) build the protocols from these. Nothing
here imports FastAPI or httpx.
"""
