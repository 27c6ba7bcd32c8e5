"""The reports layer: one table model (``table.Table``) rendered as text, Markdown, CSV and HTML.

It imports the core and the statistics layers, never the command line or the apps (docs/architecture.md).
"""
