"""A key store for benchmarks only: ``bench/desktop.py --keyring`` enrols its desktop with this backend
(``PYTHON_KEYRING_BACKEND=bench_keyring.Keyring``) to measure what a desktop whose key is in an OS key
store pays: no passphrase, no scrypt. The key sits in plain JSON in the benchmark's folder — never use it
for a real desktop."""

from __future__ import annotations

import json
import os

from keyring.backend import KeyringBackend


class Keyring(KeyringBackend):
    priority = 1

    @property
    def _path(self) -> str:
        return os.environ["BO_BENCH_KEYRING"]

    def _load(self) -> dict:
        try:
            with open(self._path, encoding="utf-8") as handle:
                return json.load(handle)
        except FileNotFoundError:
            return {}

    def _save(self, data: dict) -> None:
        with open(os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as out:
            json.dump(data, out)

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}\n{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        self._save({**self._load(), f"{service}\n{username}": password})

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        data.pop(f"{service}\n{username}", None)
        self._save(data)
