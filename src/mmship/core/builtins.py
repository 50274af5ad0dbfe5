"""mmship's own plugins, listed by module name (as pytest's ``default_plugins``).

The core imports none of them: :class:`~mmship.core.manager.PluginManager` imports each
module by the name below when it starts and registers it exactly like a third-party
entry-point plugin. ``MMSHIP_DISABLE_PLUGINS`` names plugins by the keys below; the
:data:`ESSENTIAL` ones refuse to be disabled, because mmship cannot work without them.
"""

from __future__ import annotations

#: Plugin name -> module implementing its hooks, in registration order.
BUILTIN_PLUGINS: dict[str, str] = {
    # commands
    "command-plugins": "mmship.plugins.commands.plugins",
    "command-adapters": "mmship.plugins.commands.adapters",
    "command-init": "mmship.plugins.commands.init",
    "command-check": "mmship.plugins.commands.check",
    "command-build": "mmship.plugins.commands.build",
    "command-inspect": "mmship.plugins.commands.inspect",
    "command-doctor": "mmship.plugins.commands.doctor",
    "command-serve": "mmship.plugins.commands.serve",
    "command-deploy": "mmship.plugins.commands.deploy",
    "command-invoke": "mmship.plugins.commands.invoke",
    "command-bench": "mmship.plugins.commands.bench",
    # model families
    "adapter-clip": "mmship.adapters.clip",
    "adapter-flava": "mmship.adapters.flava",
    "adapter-fusion": "mmship.adapters.fusion",
    "adapter-siglip": "mmship.adapters.siglip",
    "adapter-vlm": "mmship.adapters.vlm",
    # build stages
    "align-preprocess": "mmship.plugins.stages.align_preprocess",
    "export-onnx": "mmship.plugins.stages.export_onnx",
    "quantize-ort": "mmship.plugins.stages.quantize",
    "quantize-openvino": "mmship.plugins.stages.openvino_variants",
    "optimize-ort": "mmship.plugins.stages.optimize",
    "validate": "mmship.plugins.stages.validate",
    # inference runtimes
    "runtime-onnxruntime": "mmship.plugins.runtimes.onnxruntime",
    "runtime-openvino": "mmship.plugins.runtimes.openvino",
    # deploy targets
    "target-local": "mmship.plugins.targets.local",
    "target-friendli": "mmship.plugins.targets.friendli.target",
    "target-triton": "mmship.plugins.targets.triton.target",
    "target-ray": "mmship.plugins.targets.ray.target",
    "deploy-dispatch": "mmship.plugins.targets.deploy_dispatch",
    # payload codecs
    "codec-v2": "mmship.plugins.codecs.v2",
    "codec-embed": "mmship.plugins.codecs.embed",
    "codec-openai": "mmship.plugins.codecs.openai",
    "codec-rank": "mmship.plugins.codecs.rank",
}

#: Built-ins that cannot be disabled: without them no command runs, no bundle is built or
#: served, or no deployment is carried out. (A third party replaces one by implementing
#: the same hook; later-registered plugins are asked first.)
ESSENTIAL: frozenset[str] = frozenset({
    "command-plugins",
    "align-preprocess",
    "export-onnx",
    "validate",
    "runtime-onnxruntime",
    "deploy-dispatch",
})
