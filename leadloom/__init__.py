"""The ``leadloom`` command: the CLI, its subcommands and the process supervisor.

The top of the import graph: ``schemas`` <- ``core`` <- ``producers`` / ``streams`` /
``dashboards`` <- ``leadloom``. Nothing below imports this package; it composes the
layers (and ``infra``, a leaf) lazily inside each subcommand.
"""
