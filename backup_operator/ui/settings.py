"""The window's own settings, kept in an INI file in the desktop home (never the Windows registry), so a
portable kit carries them along and two desktops on one machine never mix them up.

Which inboxes the desktop reads is not here: that is desktop configuration (``config.toml``), shared
with ``backup-operator inbox``; the settings dialog edits it there.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings

__all__ = ["DEFAULT_TEXT_SIZE", "PAPER_SIZES", "TEXT_SIZES", "UiSettings"]

# Base point sizes offered; "large" is the default because operators read under stress, often at arm's length.
TEXT_SIZES = {"normal": 11, "large": 14, "extra large": 18, "huge": 22}
DEFAULT_TEXT_SIZE = "large"
SETTINGS_FILE = "window.ini"
PAPER_SIZES = {"auto": "Automatic (Letter in the US and Canada, else A4)", "letter": "US Letter", "a4": "A4"}


class UiSettings:
    def __init__(self, home: Path):
        self.path = Path(home) / SETTINGS_FILE
        self._qs = QSettings(str(self.path), QSettings.Format.IniFormat)

    def sync(self) -> None:
        self._qs.sync()

    @property
    def text_size(self) -> str:
        value = str(self._qs.value("display/text_size", DEFAULT_TEXT_SIZE))
        return value if value in TEXT_SIZES else DEFAULT_TEXT_SIZE

    @text_size.setter
    def text_size(self, value: str) -> None:
        if value not in TEXT_SIZES:
            raise ValueError(value)
        self._qs.setValue("display/text_size", value)
        self.sync()

    @property
    def point_size(self) -> int:
        return TEXT_SIZES[self.text_size]

    def step_text_size(self, step: int) -> str:
        names = list(TEXT_SIZES)
        index = max(0, min(len(names) - 1, names.index(self.text_size) + step))
        self.text_size = names[index]
        return self.text_size

    @property
    def high_contrast(self) -> bool:
        return str(self._qs.value("display/high_contrast", "false")).lower() in ("true", "1")

    @high_contrast.setter
    def high_contrast(self, value: bool) -> None:
        self._qs.setValue("display/high_contrast", "true" if value else "false")
        self.sync()

    @property
    def favourites(self) -> list[str]:
        value = self._qs.value("oncall/favourites", [])
        if isinstance(value, str):
            value = [value] if value else []
        return [str(v) for v in (value or [])]

    @favourites.setter
    def favourites(self, ids: list[str]) -> None:
        self._qs.setValue("oncall/favourites", list(dict.fromkeys(ids)))
        self.sync()

    def toggle_favourite(self, schedule_id: str) -> bool:
        """Add or remove a favourite schedule; True when it is now a favourite."""
        favs = self.favourites
        if schedule_id in favs:
            favs.remove(schedule_id)
            self.favourites = favs
            return False
        self.favourites = favs + [schedule_id]
        return True

    @property
    def print_hours(self) -> int:
        try:
            hours = int(self._qs.value("print/hours", 72))
        except (TypeError, ValueError):
            hours = 72
        return min(72, max(24, hours))

    @print_hours.setter
    def print_hours(self, hours: int) -> None:
        self._qs.setValue("print/hours", int(hours))
        self.sync()

    @property
    def support(self) -> str:
        """Who operators call when the directory cannot open, in the hospital's words."""
        return str(self._qs.value("help/support", "") or "") or "the IT service desk"

    @support.setter
    def support(self, text: str) -> None:
        self._qs.setValue("help/support", text.strip())
        self.sync()

    @property
    def acknowledged(self) -> str:
        """Which data-age warning the operator has read ("version:level"); it then stays as one line."""
        return str(self._qs.value("display/acknowledged", "") or "")

    @acknowledged.setter
    def acknowledged(self, key: str) -> None:
        self._qs.setValue("display/acknowledged", key)
        self.sync()

    @property
    def paper(self) -> str:
        """Crash-sheet paper: "auto" (Letter in the US, Canada and other Letter countries, else A4),
        "letter" or "a4"."""
        value = str(self._qs.value("print/paper", "auto") or "auto").lower()
        return value if value in PAPER_SIZES else "auto"

    @paper.setter
    def paper(self, value: str) -> None:
        if value not in PAPER_SIZES:
            raise ValueError(value)
        self._qs.setValue("print/paper", value)
        self.sync()

    def geometry(self):
        return self._qs.value("window/geometry")

    def set_geometry(self, data) -> None:
        self._qs.setValue("window/geometry", data)
        self.sync()
