#!/usr/bin/env bash
# Download into .whl/ (git-ignored) the wheels the GPU machine lacks for `python -m benchmarks.gpu_check`.
#
# That machine (Python 3.12, x86_64, no network) already has torch, torchvision, transformers, tokenizers,
# accelerate, huggingface_hub, safetensors, numpy, scipy, scikit-image, pillow, imageio, timm, regex.
# A backend run there still needs the packages below; each is pinned to the version this project is tested
# with, and each one's own dependencies are either listed here or already on the machine (checked with
# `unzip -p .whl/NAME-*.whl '*/METADATA' | grep ^Requires-Dist`). gradio is deliberately absent: the check
# runs backends, not the app, and no backend imports it.
#
#   diffusers         the UNet / VAE / schedulers and the pipelines the check saves as folders; needs
#                     importlib_metadata (not on the machine; 8.7.0 because 10.x also needs lazy-importer;
#                     its own need, zipp, is there)
#   open_clip_torch   CLIP reranking / scoring (its tiny random-weight scorer runs offline); needs ftfy, wcwidth
#   kornia            VectorFusion's augmentations; needs kornia_rs
#   defusedxml        reading SVGs back (svg backends check the export)
#   resvg_py          rasterizing the exported SVG
#   vtracer           tracing the best prior sample into paths (the SVG backends' default init); no dependencies
#   imageio-ffmpeg    its ffmpeg binary reads the example .mp4 and writes the video backends' edited.mp4
#                     (validate.video and csd_edit.common.write_mp4 call it; without it both video backends fail).
#                     0.6.0, not the 0.8.1 tested here: 0.8.1's wheel is 68 MB, over what a device call carries
#                     (64 MiB); 0.6.0's is 29 MB and has the same get_ffmpeg_exe().
#   trimesh           reading and writing the mesh backends' GLB / OBJ (needs numpy only)
#   xatlas            UV atlases for a mesh without them (no dependencies)
#
# Usage: bash scripts/gpu_wheels.sh        (run from anywhere; prints the total size and the install line)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
WHEELS=(
  diffusers==0.42.1
  importlib_metadata==8.7.0
  open_clip_torch==3.3.0
  ftfy==6.3.1
  wcwidth==0.9.4
  kornia==0.9.0
  kornia_rs==0.2.0
  defusedxml==0.7.1
  resvg_py==0.5.0
  vtracer==0.6.15
  imageio-ffmpeg==0.6.0
  trimesh==5.2.0
  xatlas==0.0.11
)
mkdir -p .whl
# one version of each: an older copy left in .whl/ would make the install on the device refuse both
for spec in "${WHEELS[@]}"; do
  name=${spec%%==*}
  norm=$(echo "$name" | tr '-' '_')
  for f in .whl/*.whl; do
    [ -e "$f" ] || continue
    base=$(basename "$f")
    dist=${base%%-*}
    if [ "$(echo "$dist" | tr 'A-Z-' 'a-z_')" = "$(echo "$norm" | tr 'A-Z-' 'a-z_')" ] && [[ "$base" != "${dist}-${spec#*==}-"* ]]; then
      rm -f "$f"
    fi
  done
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
ls -l .whl/*.whl
echo "total: $(du -ch .whl/*.whl | tail -1 | cut -f1) in $(ls .whl/*.whl | wc -l) wheels"
echo "install on the device (name .whl in carry):"
echo "python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site"
