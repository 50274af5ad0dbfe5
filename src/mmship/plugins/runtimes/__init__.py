"""Built-in inference runtimes, registered through ``mmship_register_runtimes``."""
