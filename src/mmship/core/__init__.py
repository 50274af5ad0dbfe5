"""mmship core: hook specifications, plugin manager, typed specs, config, bundle, CLI.

Core knows no model family and no platform: those arrive as plugins.
"""
