"""The backend contract: a frozen spec per backend, read by the runner, and each rule checked once."""
from __future__ import annotations

import pytest

from backends.core.errors import InputError


def test_every_backend_has_a_typed_contract_and_one_check_per_rule(tmp_path):
    """The spec built at registration is what the runner enforces: input counts, the empty prompt, t_min <= t_max,
    each refused once, with one sentence, before any model loads (here: by `backends.run` with the closed-form
    priors)."""
    from dataclasses import FrozenInstanceError

    from backends import get, run
    from backends.core import registry
    from backends.core.settings import make_settings
    from backends.core.types import BackendSpec, Inputs

    for task, names in registry.available().items():
        for name in names:
            spec = get(f"{task}/{name}").spec
            assert isinstance(spec, BackendSpec) and spec.key == f"{task}/{name}"
    with pytest.raises(FrozenInstanceError):
        get("svg/vectorfusion").spec.prior = "instruct"
    assert Inputs.parse("image?") == Inputs("image", 0, 1) and Inputs.parse("images") == Inputs("images", 1, None)
    with pytest.raises(ValueError, match="inputs must be"):
        Inputs.parse("audio")

    def refused(key, settings, inputs=(), match=""):
        with pytest.raises(InputError, match=match):
            next(run(key, settings, inputs=inputs, out_dir=tmp_path, device="cpu"))

    refused("svg/vectorfusion", {"prompt": "  "}, match="prompt is empty")
    refused("svg/vectorfusion", {"prompt": "a fox", "t_min": 900, "t_max": 100},
            match=r"'t_min' \(900\) must not exceed 't_max' \(100\)")
    refused("panorama/csd-edit", {"prompt": "make it winter"}, match="needs an input: an image")
    refused("svg/vectorfusion", {"prompt": "a fox"}, inputs=["a.png"], match="takes no input file")
    cls = get("svg/vectorfusion")
    ready = cls.Settings(prompt="a fox\x00")  # a ready object goes through the same parser as a dict
    with pytest.raises(InputError, match="control character"):
        make_settings(cls.Settings, ready)
