"""The host's layout as it is: which template the panel's pages extend, and its block names.

The pages fill blocks of their own, ``sr_title``, ``sr_head`` and ``sr_content``. They
extend a bridge, a small template made once per layout and Jinja environment, which
extends the host's layout and puts each of ours into the host's block that ``blocks``
names for it: ``{"title": ..., "head": ..., "content": ...}``, a missing name (or None)
leaving that part out. ``"assets"`` names a block to put Strongroom's stylesheet and
script in, for a layout that does not link them itself. A block that takes the head or
the assets keeps what the host's layout has in it (``super()``) and adds ours after it; a
block that takes the title or the content gets ours instead.

The default is Strongroom's own layout with blocks of the same names: the pages of a host
that named ``layout`` alone look as before. Pure3D's layout, for one, has ``head``,
``contentleft`` and ``contentright`` and no title block::

    Layout("layout.html", {"head": "head", "assets": "head", "content": "contentright"})
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from jinja2 import Environment, Template

DEFAULT_LAYOUT = "strongroom/layout.html"
DEFAULT_BLOCKS = {"title": "title", "head": "head", "content": "content"}
PARTS = ("assets", "title", "head", "content")  # in the order they go into one host block
ADDITIVE = ("assets", "head")  # the host block's own content stays
BLOCK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
ASSETS = ('<link rel="stylesheet" href="{{ url_for(\'strongroom.static\', filename=\'strongroom.css\') }}">'
          '<script src="{{ url_for(\'strongroom.static\', filename=\'strongroom.js\') }}" defer></script>')


class Layout:
    """A host's layout template and where the pages' parts go in it."""

    def __init__(self, name: str | None = None, blocks: Mapping[str, str | None] | None = None):
        self.name = name or DEFAULT_LAYOUT
        self.blocks = _checked(DEFAULT_BLOCKS if blocks is None else blocks)
        self._bridges: dict[int, tuple[Environment, Template]] = {}

    def template(self, environment: Environment) -> Template:
        """The bridge the pages extend, compiled once for ``environment``."""
        known = self._bridges.get(id(environment))
        if known is None or known[0] is not environment:
            known = self._bridges[id(environment)] = (environment, environment.from_string(self.source()))
        return known[1]

    def source(self) -> str:
        lines = ["{% extends " + json.dumps(self.name) + " %}",
                 "{% block sr_title %}{% endblock %}{% block sr_head %}{% endblock %}{% block sr_content %}{% endblock %}"]
        for host_block in dict.fromkeys(self.blocks.values()):
            parts = [part for part in PARTS if self.blocks.get(part) == host_block]
            keep = "{{ super() }}" if all(part in ADDITIVE for part in parts) else ""
            filled = "".join(ASSETS if part == "assets" else f"{{{{ self.sr_{part}() }}}}" for part in parts)
            lines.append(f"{{% block {host_block} %}}{keep}{filled}{{% endblock %}}")
        return "\n".join(lines)


def _checked(blocks: Mapping[str, str | None]) -> dict[str, str]:
    unknown = set(blocks) - set(PARTS)
    if unknown:
        raise ValueError(f"layout blocks: unknown part(s) {sorted(unknown)}; the parts are {list(PARTS)}")
    chosen = {part: name for part, name in blocks.items() if name is not None}
    bad = [name for name in chosen.values() if not isinstance(name, str) or not BLOCK_NAME.match(name)]
    if bad:
        raise ValueError(f"layout blocks: {bad!r} are not Jinja block names")
    if any(name.startswith("sr_") for name in chosen.values()):
        raise ValueError("layout blocks: names starting with sr_ are the pages' own")
    return chosen


def layout_of(layout: Layout | str | None) -> Layout:
    """A ``Layout`` from what a caller passed: one, a template name (default blocks), or None."""
    return layout if isinstance(layout, Layout) else Layout(layout)
