#!/usr/bin/env bash
# Installs the real sollol==0.9.66 for the instrumentation tests (pytest -m sollol), without its
# declared dependencies: those include dask, bokeh, gevent, gpustat, fastapi and ray[default], far
# more than importing `sollol.pool` and `sollol.hybrid_router` needs. Importing them runs
# sollol/__init__.py, which imports ray, flask, flask-cors, flask-sock and prometheus-client at
# module level; httpx (already a test dependency) is what OllamaPool talks HTTP with.
# Usage: scripts/install_sollol.sh [python]   (default: .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
python="${1:-.venv/bin/python}"

"$python" -m pip install -q "ray>=2.9" "flask>=2" "flask-cors>=4" "flask-sock>=0.7" "prometheus-client>=0.12" "httpx>=0.27"
"$python" -m pip install -q --no-deps "sollol==0.9.66"   # last: nothing installed after it re-checks its deps
"$python" -c "import sollol.pool, sollol.hybrid_router"
