"""The Qt editor: canvas, panels, the undo-stack adapter and the worker-thread bridge.

Only this package imports Qt; it drives ``core`` and ``nodes`` and is never imported by them.
"""
