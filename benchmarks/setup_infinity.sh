#!/usr/bin/env bash
# Build the infinity-emb 0.0.78 baseline in its own venv, away from mmship's.
#
#   benchmarks/setup_infinity.sh [VENV_DIR]      (default: .bench/infinity-venv)
#
# Order matters:
#   1. torch==2.13.0 first, from the CPU index configured for this machine: a plain
#      `pip install torch` (or letting infinity pull it) downloads the CUDA build.
#   2. infinity-emb[server,torch]==0.0.78: `server` gives the CLI (typer, uvicorn, fastapi),
#      `torch` gives sentence-transformers<4 and the torch engine. The `vision` extra is left
#      out on purpose: it pulls torchvision (does not import beside the local torch 2.13.0
#      build) and colpali-engine (only for ColPali models); CLIP needs only Pillow.
#   3. transformers<5 (sentence-transformers<4 and infinity 0.0.78 were written for 4.x),
#      Pillow for images, aiohttp (infinity fetches image URLs with it and refuses to start
#      image models without it).
#   4. torchvision removed if anything pulled it in anyway.
# Nothing here is imported by mmship; serve_clip.py only starts `VENV/bin/infinity_emb`.
set -euo pipefail

VENV="${1:-.bench/infinity-venv}"
PY="${PYTHON:-python3}"

if [[ -x "$VENV/bin/infinity_emb" ]] && "$VENV/bin/python" -c "import infinity_emb, PIL, aiohttp" 2>/dev/null; then
    echo "infinity-emb venv ready: $VENV"
    exit 0
fi

echo "creating $VENV (torch 2.13.0 CPU, infinity-emb 0.0.78)"
"$PY" -m venv "$VENV"
PIP=("$VENV/bin/pip" install -q --disable-pip-version-check)
"${PIP[@]}" torch==2.13.0
"${PIP[@]}" "infinity-emb[server,torch]==0.0.78" "transformers>=4.47,<5" pillow aiohttp torch==2.13.0
if "$VENV/bin/pip" show torchvision >/dev/null 2>&1; then
    "$VENV/bin/pip" uninstall -q -y torchvision
fi
"$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
for name in ("infinity-emb", "torch", "transformers", "sentence-transformers", "pillow", "aiohttp"):
    print(f"  {name} {md.version(name)}")
EOF
echo "infinity-emb venv ready: $VENV"
