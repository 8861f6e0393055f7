#!/usr/bin/env bash
# One-time set-up shared by `make demo` and `make test`: Debian packages (only when missing),
# then a virtual environment at .venv/ with vlmpipe installed from the lock file.
# Idempotent: a second run finds everything in place and does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(tesseract-ocr tesseract-ocr-rus tesseract-ocr-eng hunspell-ru hunspell-en-us
              libenchant-2-2 fonts-dejavu-core chromium)
PYTHON=${PYTHON:-python3}

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: missing Debian packages: ${missing[*]}" >&2
    echo "setup: install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 2
  fi
fi

stamp=.venv/.vlmpipe-installed
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && [ "$stamp" -nt requirements.lock ]; then
  exec bash scripts/setup_models.sh  # model-based metrics: never fails the set-up, no-op once done
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
echo "setup: installing vlmpipe and its locked dependencies into .venv"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -c requirements.lock -e '.[dev]'
touch "$stamp"
bash scripts/setup_models.sh  # model-based metrics (docs/model-metrics.md)
