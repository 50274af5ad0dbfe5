"""The ``triton`` deploy target: a Triton model repository (``config.pbtxt`` per graph,
:mod:`.model_config`) and a KServe manifest (:mod:`.kserve`)."""
