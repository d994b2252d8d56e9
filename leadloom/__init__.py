"""Shared glue of LeadLoom: settings, client factories, the store owner and the CLI.

Import direction: ``schemas`` <- ``leadloom`` (glue) <- ``producers`` / ``streams`` /
``dashboards`` / ``infra``. Only :mod:`leadloom.cli` (the composition root) reaches
upward, and it does so lazily inside each subcommand.
"""
