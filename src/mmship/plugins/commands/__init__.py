"""Built-in commands, one plugin per command (group), each adding itself through
``mmship_register_commands`` exactly as a third-party plugin would."""
