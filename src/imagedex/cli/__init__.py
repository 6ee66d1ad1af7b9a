"""The `imagedex` command: one module per command group."""
