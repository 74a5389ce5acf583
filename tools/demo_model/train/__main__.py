"""``python -m tools.demo_model.train``: see the package's docstring."""

from tools.demo_model.train.command import main

main()
