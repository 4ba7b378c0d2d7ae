"""Build the `icons` prior's data: real emoji icons, rasterized at 64x64 over white, with captions and tags.

    python scripts/build_icons.py                 # npm-installs the pinned packages into a temp dir
    python scripts/build_icons.py --from DIR      # reuse DIR/node_modules (already holding the pinned packages)

Writes backends/priors/data/icons.npz and backends/priors/data/ICONS.md (attribution). Rebuilds byte for byte:
the icons come in a fixed order (icon set, then emojibase's own emoji order), resvg renders deterministically,
and the zip is written by hand with a fixed timestamp (np.savez_compressed would stamp the build time).

Sources (all from the npm registry, exact versions):
- Fluent Emoji Flat (Microsoft, MIT), as packaged by Iconify: @iconify-json/fluent-emoji-flat
- Twemoji (Twitter and contributors, CC BY 4.0), as packaged by Iconify: @iconify-json/twemoji
- captions and tags: emojibase-data (MIT), English CLDR labels and tags, plus the emoji's group and subgroup.
Only base emoji are kept (no skin-tone variants, no components such as hair styles or regional letters), so
each set contributes one icon per emoji that it draws.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

SIZE = 64  # pixels: the prior's native side
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold; any fixed value gives stable bytes

# The sets, in the order they enter the archive. `licence` is the SPDX id stored per icon.
SETS = [
    {
        "id": "fluent-emoji-flat",
        "package": "@iconify-json/fluent-emoji-flat",
        "version": "1.2.6",
        "name": "Fluent Emoji (flat style)",
        "author": "Microsoft Corporation",
        "licence": "MIT",
        "licence_url": "https://github.com/microsoft/fluentui-emoji/blob/main/LICENSE",
        "source_url": "https://github.com/microsoft/fluentui-emoji",
    },
    {
        "id": "twemoji",
        "package": "@iconify-json/twemoji",
        "version": "1.2.5",
        "name": "Twemoji",
        "author": "Twitter, Inc and other contributors (maintained by jdecked)",
        "licence": "CC-BY-4.0",
        "licence_url": "https://creativecommons.org/licenses/by/4.0/",
        "source_url": "https://github.com/jdecked/twemoji",
    },
]
CAPTIONS = {"package": "emojibase-data", "version": "17.0.0", "licence": "MIT",
            "author": "Miles Johnson", "source_url": "https://github.com/milesj/emojibase"}

# emojibase groups to leave out: 2 = "component" (skin tones, hair styles); None = regional indicator letters
SKIP_GROUPS = {2, None}

MIT_FLUENT = """MIT License

Copyright (c) Microsoft Corporation.

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE."""


def npm_install(dest: Path) -> Path:
    """Install the pinned packages into dest/node_modules (no scripts run) and return that folder."""
    pkgs = [f"{s['package']}@{s['version']}" for s in SETS] + [f"{CAPTIONS['package']}@{CAPTIONS['version']}"]
    (dest / "package.json").write_text('{"name": "icons-build", "private": true}\n')
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--save-exact", *pkgs],
                   cwd=dest, check=True)
    return dest / "node_modules"


def check_versions(node_modules: Path) -> None:
    for pkg, ver in [(s["package"], s["version"]) for s in SETS] + [(CAPTIONS["package"], CAPTIONS["version"])]:
        found = json.loads((node_modules / pkg / "package.json").read_text())["version"]
        if found != ver:
            raise SystemExit(f"{pkg} is {found} in {node_modules}, the build pins {ver}")


def norm_hex(code: str) -> str:
    """'1F3F3-FE0F-200D-1F308' -> '1f3f3-200d-1f308': the variation selector is dropped because the sets and
    emojibase disagree on where they write it."""
    return "-".join(p for p in code.lower().split("-") if p != "fe0f")


def icon_svg(icons: dict, name: str) -> str:
    """An Iconify icon as a standalone SVG document, SIZE x SIZE pixels (aliases resolved)."""
    aliases = icons.get("aliases", {})
    while name not in icons["icons"]:
        name = aliases[name]["parent"]
    icon = icons["icons"][name]
    left, top = icon.get("left", icons.get("left", 0)), icon.get("top", icons.get("top", 0))
    w, h = icon.get("width", icons.get("width", 16)), icon.get("height", icons.get("height", 16))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'width="{SIZE}" height="{SIZE}" viewBox="{left} {top} {w} {h}">{icon["body"]}</svg>')


def rasterize(svg: str) -> np.ndarray:
    """SVG text -> (SIZE, SIZE, 3) uint8 RGB over white, rendered by resvg."""
    import resvg_py
    from PIL import Image

    png = bytes(resvg_py.svg_to_bytes(svg_string=svg, width=SIZE, height=SIZE, background="#ffffff"))
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    if img.shape != (SIZE, SIZE, 3):
        raise RuntimeError(f"resvg returned {img.shape}, expected {(SIZE, SIZE, 3)}")
    return img


def collect(node_modules: Path) -> dict[str, np.ndarray]:
    """All icons as arrays: images (N, 64, 64, 3) uint8; caption, tags (';'-joined), source, licence, hexcode."""
    base = node_modules / CAPTIONS["package"] / "en"
    emoji = json.loads((base / "data.json").read_text())
    messages = json.loads((base / "messages.json").read_text())
    groups = {g["order"]: g["message"] for g in messages["groups"]}
    subgroups = {g["order"]: g["message"] for g in messages["subgroups"]}
    emoji = sorted((e for e in emoji if e.get("group") not in SKIP_GROUPS), key=lambda e: (e["order"], e["hexcode"]))
    rows = {"images": [], "caption": [], "tags": [], "source": [], "licence": [], "hexcode": []}
    for s in SETS:
        icons = json.loads((node_modules / s["package"] / "icons.json").read_text())
        chars = {norm_hex(k): v for k, v in json.loads((node_modules / s["package"] / "chars.json").read_text()).items()}
        for e in emoji:
            name = chars.get(norm_hex(e["hexcode"]))
            if name is None:
                continue  # this set does not draw that emoji
            # tags: CLDR keywords, then group and subgroup words ("food & drink", "fruit"), deduplicated in order
            tags = list(dict.fromkeys([*e.get("tags", []), subgroups[e["subgroup"]], groups[e["group"]]]))
            rows["images"].append(rasterize(icon_svg(icons, name)))
            rows["caption"].append(e["label"])
            rows["tags"].append(";".join(tags))
            rows["source"].append(s["id"])
            rows["licence"].append(s["licence"])
            rows["hexcode"].append(e["hexcode"])
    out = {"images": np.stack(rows.pop("images"))}
    out.update({k: np.array(v, dtype=str) for k, v in rows.items()})  # fixed-width unicode: no pickle needed
    return out


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.load-compatible .npz with fixed entry order, timestamps and compression: same arrays, same bytes."""
    with zipfile.ZipFile(path, "w") as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=9)


def attribution(arrays: dict[str, np.ndarray]) -> str:
    counts = {s["id"]: int((arrays["source"] == s["id"]).sum()) for s in SETS}
    lines = [
        "# Icon data: sources and licences",
        "",
        f"`icons.npz` holds {len(arrays['caption'])} emoji icons rasterized by resvg at {SIZE}x{SIZE} px over a white "
        "background (RGB uint8), built by `scripts/build_icons.py` from these npm packages (exact versions). "
        "Changes made to the originals: each SVG was rendered to a 64x64 bitmap over white; nothing else. "
        "Per icon the archive stores its caption, tags, source set and licence id (arrays `caption`, `tags`, "
        "`source`, `licence`, `hexcode`).",
        "",
        "| set | npm package | icons | author | licence |",
        "|---|---|---|---|---|",
    ]
    for s in SETS:
        lines.append(f"| {s['name']} ({s['source_url']}) | `{s['package']}@{s['version']}` | {counts[s['id']]} | "
                     f"{s['author']} | {s['licence']} ({s['licence_url']}) |")
    lines += [
        f"| captions and tags | `{CAPTIONS['package']}@{CAPTIONS['version']}` | - | {CAPTIONS['author']} "
        f"({CAPTIONS['source_url']}) | MIT |",
        "",
        "## Twemoji (CC BY 4.0)",
        "",
        "Twemoji graphics: Copyright Twitter, Inc and other contributors; graphics licensed under CC-BY 4.0 "
        "(https://creativecommons.org/licenses/by/4.0/). Source: https://github.com/jdecked/twemoji, as packaged "
        "by Iconify (https://iconify.design) in `@iconify-json/twemoji`. The icons here are 64x64 raster "
        "renderings of those graphics over white; they are otherwise unmodified. No endorsement by the authors "
        "is implied.",
        "",
        "## Fluent Emoji (MIT)",
        "",
        "Fluent Emoji flat-style graphics by Microsoft (https://github.com/microsoft/fluentui-emoji), as packaged "
        "by Iconify in `@iconify-json/fluent-emoji-flat`, under this licence:",
        "",
        "```",
        MIT_FLUENT,
        "```",
        "",
        "## emojibase-data (MIT)",
        "",
        "Captions and tags (CLDR English annotations as compiled by emojibase): Copyright (c) 2017-2019 Miles "
        "Johnson, MIT licence (the same terms as above, with that copyright line).",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from", dest="node_modules_parent", type=Path,
                    help="a folder whose node_modules already holds the pinned packages (skips npm install)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "backends/priors/data")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if args.node_modules_parent:
            node_modules = args.node_modules_parent / "node_modules"
        else:
            node_modules = npm_install(Path(tmp))
        check_versions(node_modules)
        arrays = collect(node_modules)
    args.out.mkdir(parents=True, exist_ok=True)
    npz = args.out / "icons.npz"
    write_npz(npz, arrays)
    (args.out / "ICONS.md").write_text(attribution(arrays))
    digest = hashlib.sha256(npz.read_bytes()).hexdigest()
    print(f"{len(arrays['caption'])} icons -> {npz} ({npz.stat().st_size / 1e6:.1f} MB, sha256 {digest[:16]}) "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
