"""The window's docks: node library, inspector, run queue and history, image viewer."""
