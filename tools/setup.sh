#!/usr/bin/env bash
# Sets LatentLoom up on a fresh Debian/Ubuntu machine with Python 3.11, then opens it on the
# default workflow (headless when there is no display).
#
#   bash tools/setup.sh            set up (only what is missing) and run the app
#   bash tools/setup.sh --no-run   set up only (the test script uses this)
#
# Order matters: torch==2.13.0 goes in before anything that depends on torch, so that no other
# package drags in an unpinned torch with gigabytes of CUDA libraries.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

run_app=1
[ "${1:-}" = "--no-run" ] && run_app=0
python=${PYTHON:-python3}

apt_install() {
    local sudo=""
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null; then
            sudo="sudo"
        else
            echo "setup: these Debian packages are missing and I am not root: $*" >&2
            echo "setup: install them with: apt-get install $*" >&2
            exit 1
        fi
    fi
    echo "setup: installing Debian packages: $*"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" \
        >/dev/null
}

# 1. The Debian packages Qt needs (offscreen too), and venv support for Python.
qt_packages="libgl1 libegl1 libxkbcommon0 libglib2.0-0 libfontconfig1 libdbus-1-3"
missing=()
if command -v dpkg-query >/dev/null; then
    for pkg in $qt_packages; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
fi
# On a desktop, Qt's X11 platform plugin needs the xcb libraries too.
if [ -n "${DISPLAY:-}" ] && command -v dpkg-query >/dev/null; then
    for pkg in libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 \
        libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-xkb1; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
fi
if ! "$python" -c "import ensurepip, venv" 2>/dev/null; then
    missing+=("python3-venv")
fi
if [ ${#missing[@]} -gt 0 ]; then
    apt_install "${missing[@]}"
fi

# 2. The virtual environment.
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $("$python" --version)"
    "$python" -m venv .venv
fi
pip=(.venv/bin/python -m pip --disable-pip-version-check)

# 3. torch, pinned, first.
if ! .venv/bin/python -c "import sys, torch; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" \
    2>/dev/null; then
    echo "setup: installing torch==2.13.0"
    "${pip[@]}" install -q "torch==2.13.0"
fi

# 4. LatentLoom and everything else: the test tools, and Ray (the cluster extra, ~240 MB) so
#    that the tests of sweeps on a cluster run too.
if [ ! -f .venv/.latentloom-installed ] || [ pyproject.toml -nt .venv/.latentloom-installed ]; then
    echo "setup: installing LatentLoom and its dependencies"
    "${pip[@]}" install -q -e ".[test,cluster]"
    touch .venv/.latentloom-installed
fi

# 5. The app, on the default workflow.
if [ "$run_app" = 1 ]; then
    exec .venv/bin/python main.py
fi
