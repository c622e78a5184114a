"""The instrument-file formats ``quantdesk data import-instruments`` reads.

Its own module, free of SQLAlchemy: the command's ``--help`` needs the choices, not the
importers (``importers.py`` re-exports it).
"""

from __future__ import annotations

from enum import StrEnum


class ImportFormat(StrEnum):
    AUTO = "auto"
    KITE = "kite"
    GENERIC = "generic"
