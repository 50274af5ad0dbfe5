"""mmship's built-in plugins: stages, runtime, targets and payload codecs.

They are registered exactly like third-party plugins, by name, through
:meth:`mmship.core.manager.PluginManager.load_builtins`; ``MMSHIP_DISABLE_PLUGINS``
disables them by the names below. Modules are imported only when the manager starts.
"""

from __future__ import annotations

#: Plugin name -> module implementing its hooks.
BUILTIN_PLUGINS: dict[str, str] = {
    "adapter-clip": "mmship.adapters.clip",
    "adapter-flava": "mmship.adapters.flava",
    "adapter-fusion": "mmship.adapters.fusion",
    "adapter-vlm": "mmship.adapters.vlm",
    "align-preprocess": "mmship.plugins.align_preprocess",
    "export-onnx": "mmship.plugins.export_onnx",
    "quantize-ort": "mmship.plugins.quantize",
    "optimize-ort": "mmship.plugins.optimize",
    "runtime-serve": "mmship.plugins.runtime.commands",
    "target-local": "mmship.plugins.runtime.local_target",
    "target-friendli": "mmship.plugins.targets.friendli.target",
    "target-triton": "mmship.plugins.targets.triton",
    "deploy-dispatch": "mmship.plugins.targets.deploy_dispatch",
    "target-ray": "mmship.plugins.ray_serve.target",
    "payload-v2": "mmship.plugins.payload.v2",
    "payload-embed": "mmship.plugins.payload.embed",
}
