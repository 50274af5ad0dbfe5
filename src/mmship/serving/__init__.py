"""mmship's server (a library, not a plugin): the engine over the runtime registry,
dynamic batching, the model service and the FastAPI app. The ``serve`` command, the
``local`` and ``ray`` targets and ``mmship bench`` run it.

Preprocessing lives in :mod:`mmship.preprocess`. Nothing is imported here, so importing
a submodule stays cheap.
"""
