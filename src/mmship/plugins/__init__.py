"""mmship's built-in plugins: every module here implements hooks and is registered by
name from :data:`mmship.core.builtins.BUILTIN_PLUGINS`, exactly like a third-party
plugin from the ``mmship`` entry-point group.

* :mod:`.commands`: the command-line commands (``build``, ``serve``, ``deploy``, ...);
* :mod:`.stages`: build stages (align, export, quantize, optimize, validate);
* :mod:`.runtimes`: inference runtimes (onnxruntime);
* :mod:`.targets`: deploy targets (local, friendli, ray, triton);
* :mod:`.codecs`: payload codecs (Open Inference Protocol v2, ``/embed``).

Libraries the plugins share live beside this package, not in it: :mod:`mmship.serving`,
:mod:`mmship.payload`, :mod:`mmship.preprocess`, :mod:`mmship.evaluation`,
:mod:`mmship.bench`, :mod:`mmship.ort`.
"""
