"""Secrets for the quick start, generated once into ``var/secrets.json`` and reused.

Production sets every secret in the environment; the deploy check ``cims.W001`` warns when a
secret still comes from this file.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path


def _new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _generate() -> dict[str, str]:
    return {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "FIELD_ENCRYPTION_KEYS": f"k1:{_new_key()}",
        "BLIND_INDEX_KEY": _new_key(),
        "BACKUP_ENCRYPTION_KEY": _new_key(),
    }


def load_local_secrets(var_dir: Path) -> dict[str, str]:
    path = var_dir / "secrets.json"
    if not path.exists():
        var_dir.mkdir(parents=True, exist_ok=True)
        tmp = var_dir / f".secrets.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(_generate(), fh, indent=2)
        try:
            # link() fails if the file exists: when two processes start at once, the first one wins
            # and both read the same secrets.
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    data = json.loads(path.read_text(encoding="utf-8"))
    missing = {k: v for k, v in _generate().items() if k not in data}
    if missing:
        # A secret introduced by a newer version: add it, keep the existing ones.
        data.update(missing)
        tmp = var_dir / f".secrets.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2)
        os.replace(tmp, path)
    return data
