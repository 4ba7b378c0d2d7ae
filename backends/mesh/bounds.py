"""The bounds every mesh reader here checks, from headers, before trimesh parses anything heavy: the sizes, the
triangles, each texture's size (for every file Pillow opens, whatever its name) and all textures' pixels together,
and the guard Pillow decodes under while trimesh loads. A refusal is an InputError of one sentence naming the
file. `Checked` is what a reader (`gltf.checked_gltf`, `objzip.checked_zip`) hands trimesh once its file passed."""
from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image

from ..inputs.media import HEADER_BYTES, pillow_pixel_limit
from ..inputs.validate import MB, fail

MAX_MESH_BYTES = 50 * MB
MAX_TRIANGLES = 200_000
MAX_TEXTURE_SIDE = 4096
MAX_TEXTURE_PIXELS = MAX_TEXTURE_SIDE * MAX_TEXTURE_SIDE
# all of a mesh's textures together: trimesh decodes every one and packs them into one atlas (which is then
# scaled to MAX_TEXTURE_SIDE); 4 textures of 4096x4096, about 270 MB decoded
MAX_TEXTURES_PIXELS = 4 * MAX_TEXTURE_PIXELS
BAKE_SIZE = 512  # texture side for meshes that came without one
MAX_BAKE_SIZE = 2048  # and at most, for a repeating texture drawn once into a new atlas
PROGRAM_FORMATS = ("EPS", "WMF")  # Pillow decodes these through Ghostscript or the system: never for an upload
FORMATS = "a .glb, a .gltf with embedded data, or a .zip holding one .obj with its .mtl and texture"


@dataclass
class Checked:
    """A mesh file past every check from its headers: what trimesh reads (bytes, their type, a resolver of a zip's
    members), the name for messages, and its textures' sizes, (width, height) each."""

    source: io.BytesIO
    file_type: str
    shown: str
    sizes: list[tuple[int, int]]
    resolver: object = None

    @property
    def texels(self) -> int:
        """See `mesh_texels`."""
        pixels = sum(w * h for w, h in self.sizes)
        return min(max(pixels, BAKE_SIZE * BAKE_SIZE), MAX_TEXTURE_PIXELS)


def check_triangles(triangles: int, shown: str) -> None:
    if triangles > MAX_TRIANGLES:
        raise fail(f"The mesh {shown} has {triangles:,} triangles; at most {MAX_TRIANGLES:,} are allowed.")


def check_texture_total(sizes: list[tuple[int, int]], shown: str) -> None:
    pixels = sum(w * h for w, h in sizes)
    if pixels > MAX_TEXTURES_PIXELS:
        raise fail(f"The textures of {shown} hold {pixels:,} pixels together; at most {MAX_TEXTURES_PIXELS:,} "
                   f"(four of {MAX_TEXTURE_SIDE}x{MAX_TEXTURE_SIDE}) are allowed.")


def texture_size(data: bytes, name: str, shown: str, required: bool = False) -> tuple[int, int]:
    """(width, height) of an image in any format Pillow opens, from its header (nothing is decoded), or InputError
    for one larger than MAX_TEXTURE_SIDE on a side. A file Pillow does not open is (0, 0) (trimesh, which decodes
    textures with Pillow, cannot use it either) or, required=True (a glTF's image), an InputError."""
    try:
        with pillow_pixel_limit(None):  # the size is judged here, with its own sentence
            with Image.open(io.BytesIO(data)) as im:
                width, height, fmt = *im.size, im.format
    except Exception:  # UnidentifiedImageError, SyntaxError of a broken header, ...
        if not required:
            return 0, 0
        raise fail(f"The texture {name} in {shown} is not an image this app reads (PNG, JPEG, WebP).") from None
    if fmt in PROGRAM_FORMATS:
        raise fail(f"The texture {name} in {shown} is a {fmt} file, which Pillow draws by running another program; "
                   "use a PNG or JPEG texture.")
    if width > MAX_TEXTURE_SIDE or height > MAX_TEXTURE_SIDE:
        raise fail(f"The texture {name} in {shown} is {width}x{height}; at most "
                   f"{MAX_TEXTURE_SIDE}x{MAX_TEXTURE_SIDE} is allowed.")
    return width, height


# Pillow's warning between its limit and twice that, which `texture_guard` makes it give for textures within ours,
# silenced by one filter for the process, set here once: catch_warnings around the load would swap the process's
# filter list while other requests' threads decode (and could leave it swapped). Every image this app decodes has
# its size checked from its header first, so the warning says nothing a check has not.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning, module=r"PIL\.")


@contextlib.contextmanager
def texture_guard():
    """Pillow refuses to decode any image over MAX_TEXTURE_PIXELS while trimesh loads: its own guard only warns
    between its limit and twice that, so the limit is set at half (the warning is filtered above). The headers were
    checked before; this holds if a file is read in a way they did not foresee."""
    with pillow_pixel_limit(MAX_TEXTURE_PIXELS // 2):
        yield

