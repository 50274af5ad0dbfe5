"""Built-in deploy targets beyond ``local``: FriendliAI and Triton/KServe, plus the
default ``mmship_deploy`` implementation (:mod:`.deploy_dispatch`).

Each target is a plugin registered through ``mmship_register_targets``; its pydantic
``settings_model`` validates the ``target:`` section of ``deploy_config.yaml``.
"""
