"""One module per Google resource the reconcile pass keeps right, each ``observe -> plan -> apply -> outcome``.

A step returns a typed outcome (conditions, Events, status, progress or failure, and the facts counted as
metrics) and never touches the pass's other state; ``reconcile`` composes the steps in order.
"""
