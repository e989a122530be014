#!/usr/bin/env bash
# Create bench/.venv-fastai: a separate venv holding fastai 2.8.12, the benchmark peer.
# fastai 2.8.12 needs fastcore>=2.2.22, which nbdev 2 (the project venv) cannot use, hence its own venv.
# Idempotent: re-running skips the steps whose result is already there.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.venv-fastai"
py="$venv/bin/python"

if [ ! -x "$py" ]; then
    echo "creating $venv"
    python3 -m venv "$venv"
fi
# Unpinned on purpose: resolves to the torch/torchvision on local disk (2.14.1/0.29.1); the 2.13.0 CPU wheel pairs with a broken torchvision.
if ! "$py" -c "import torch, torchvision" 2>/dev/null; then
    "$py" -m pip install torch torchvision
fi
if [ "$("$py" -c 'import fastai; print(fastai.__version__)' 2>/dev/null || true)" != "2.8.12" ]; then
    "$py" -m pip install "fastai==2.8.12"
fi
"$py" -c "import torch, torchvision, fastai, fastcore; print('fastai venv ready: torch', torch.__version__, 'torchvision', torchvision.__version__, 'fastai', fastai.__version__, 'fastcore', fastcore.__version__)"
