"""Composite commands (demo, bench, simulate): the top layer, free to import everything."""
