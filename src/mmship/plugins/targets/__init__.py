"""Built-in deploy targets, one plugin each: ``local`` (:mod:`.local`), ``friendli``
(:mod:`.friendli`), ``ray`` (:mod:`.ray`) and ``triton`` (:mod:`.triton`), plus the
default ``mmship_deploy`` implementation (:mod:`.deploy_dispatch`).

Each target registers through ``mmship_register_targets``; its pydantic ``settings_model``
validates the ``target:`` section of ``deploy_config.yaml``.
"""
