"""Strongroom: safe, incremental backups of a site's working files and MongoDB database.

The library is the package itself; ``strongroom.service.Strongroom`` is the entry
point for every operation. The CLI (``strongroom.cli``) and the web face
(``strongroom.web``) are thin layers over it.
"""

__version__ = "0.1.0"
