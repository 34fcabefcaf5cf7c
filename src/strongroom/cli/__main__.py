"""``python -m strongroom.cli``: the ``strongroom`` command."""

from strongroom.cli import main

main()
