"""The subcommands of `pantau`, one module per area. Each has ``add_parser(sub)``, which adds its
subcommand (options and help) to the `pantau` parser, and the command it runs; cli/main.py
builds the parser from them and runs the command chosen.

A command imports what it needs when it runs, so that `pantau --help` stays fast (pyproject.toml
lets these modules import inside functions); its log lines go to the ``pantau`` logger.
"""
