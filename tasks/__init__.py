"""Task adapters, one module per benchmark family; each registers itself with ``@register_task``.

``crab_eval.registry`` imports every module of this package on first use, so adding a task is adding a module.
"""
