"""Command handlers, one module per noun; each handler is ``handler(args, inv) -> int``.

``main`` imports a module only when one of its commands runs.
"""
