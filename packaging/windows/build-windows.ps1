# Windows build recipe (not run on our Linux machines: see packaging/README.md).
# From the project root, in PowerShell, with Python 3.11:
$ErrorActionPreference = "Stop"
py -3.11 -m venv .venv
.venv\Scripts\python -m pip install --upgrade pip
.venv\Scripts\python -m pip install torch==2.14.1 torchvision==0.29.1
.venv\Scripts\python -m pip install -e ".[build]" "pyinstaller==6.22.*"
# GPU through DirectML (optional): pip uninstall -y onnxruntime; pip install onnxruntime-directml
.venv\Scripts\python -m sba_desktop.engine.torch_build.onnx_export --out packaging\build\models
$env:SBA_BUNDLE_MODELS = "$PWD\packaging\build\models"
.venv\Scripts\python -m PyInstaller --noconfirm --distpath packaging\dist --workpath packaging\build\pyinstaller packaging\sba-desktop.spec
# Then sign: signtool sign /fd SHA256 /tr http://timestamp.digicert.com packaging\dist\sba-desktop\*.exe
