"""Text templates shipped with mmship (the ``mmship init`` starter config)."""
