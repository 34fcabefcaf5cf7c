"""``python -m strongroom.cli``: the ``strongroom`` command."""

from . import main

main()
