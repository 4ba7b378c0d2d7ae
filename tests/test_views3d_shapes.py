"""views3d's views of another shape than the first: cropped at the centre (never squashed) within 4:3 of it, with a
warning naming every cropped view; refused further off, naming every such view (the old code squashed them all to
the first view's size and warned only of the first view's resize)."""
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

import backends
from backends.csd_edit.views3d import fit_views


def view(w, h, value=0):
    return np.full((h, w, 3), value, np.uint8)


def test_views_of_the_first_views_shape_are_kept_as_they_are():
    views = [view(64, 48), view(128, 96), view(65, 48)]   # 65x48: one pixel of rounding, the same shape
    fitted, warnings = fit_views(views)
    assert warnings == [] and all(a is b for a, b in zip(fitted, views))


def test_views_within_4_3_of_the_first_are_cropped_at_the_centre_and_all_named():
    tall = view(40, 50)
    tall[:5] = tall[-5:] = 255                              # the rows a centre crop to 1:1 removes
    fitted, warnings = fit_views([view(48, 48), view(64, 48), view(48, 48), tall])
    assert [v.shape[:2] for v in fitted] == [(48, 48), (48, 48), (48, 48), (40, 40)]
    assert fitted[3].max() == 0                             # the centre, not a squash of the whole view
    assert warnings == ["The views 2 (64x48) and 4 (40x50) were cropped at the centre to the shape of view 1 "
                        "(48x48), as views of one object are edited at one shape."]


def test_views_further_off_than_4_3_are_refused_naming_every_one():
    with pytest.raises(backends.InputError) as err:
        fit_views([view(64, 48), view(48, 64), view(64, 48), view(96, 48), view(60, 48)])
    assert str(err.value) == ("The views 2 (48x64) and 4 (96x48) have another shape than view 1 (64x48), more than "
                              "a 4:3 crop would make up; give views of one shape.")


def test_a_run_on_views_of_several_shapes_crops_them_and_says_so_in_result_json(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for k, (w, h) in enumerate([(48, 48), (64, 48), (48, 60)]):
        paths.append(tmp_path / f"v{k}.png")
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(paths[-1])
    result = backends.run_to_end("views3d/per-view", {"steps": 1, "every": 1, "short_side": 32, "prompt": "winter"},
                                 prior="analytic-edit", inputs=[str(p) for p in paths], out_dir=tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "result.json").read_text())
    assert saved["warnings"][0] == ("The views 2 (64x48) and 3 (48x60) were cropped at the centre to the shape of "
                                    "view 1 (48x48), as views of one object are edited at one shape.")
    with zipfile.ZipFile(result.files["zip"]) as zf:
        sizes = {Image.open(zf.open(name)).size for name in zf.namelist()}
    assert sizes == {(48, 48)}
