#!/usr/bin/env bash
# Runs every check: lint (ruff), layer contracts (import-linter), then the test suite.
# Sets up the environment first if it is missing (tools/setup.sh --no-run), so it works on a
# fresh clone. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tools/setup.sh --no-run
export QT_QPA_PLATFORM=offscreen HF_HUB_OFFLINE=1
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== import contracts"
.venv/bin/lint-imports
echo "== tests"
.venv/bin/python -m pytest "$@"
