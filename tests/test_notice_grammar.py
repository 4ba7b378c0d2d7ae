"""The sentences a run shows in its notices, checked for grammar over every template that takes a count or a
noun: numbers agree with their nouns, a plural subject takes "were", each sentence starts with a capital and ends
with a full stop. The checker is tried on the sentences that were once shown wrong, so it can fail."""
from __future__ import annotations

import re

import pytest

from backends.csd_edit.outputs import resize_warning
from backends.csd_edit.video import carry_note
from backends.priors.base import PromptReading
from demo import metrics

COUNTED = ("frame", "keyframe", "view", "window", "image", "icon", "path", "shape", "step", "file", "thing")
ONE_OF_MANY = re.compile(rf"\b1 ({'|'.join(COUNTED)})s\b")
MANY_OF_ONE = re.compile(rf"\b(0|[2-9]|\d{{2,}}) ({'|'.join(COUNTED)})\b(?!-)")
PLURAL_WAS = re.compile(rf"\b[Tt]he ({'|'.join(COUNTED)})s\b[^.;:]*?\bwas\b")
SINGULAR_WERE = re.compile(r"\b[Tt]he (image|panorama|clip|video|picture)\b[^.;:]*?\bwere\b")


def problems(sentence: str) -> list[str]:
    found = []
    if not sentence[:1].isupper():
        found.append("does not start with a capital")
    if not sentence.rstrip().endswith((".", ".)")):
        found.append("does not end with a full stop")
    if "  " in sentence or " ," in sentence or " ." in sentence:
        found.append("stray space")
    for pattern, what in ((ONE_OF_MANY, "1 with a plural"), (MANY_OF_ONE, "a number over 1 with a singular"),
                          (PLURAL_WAS, "a plural subject with 'was'"), (SINGULAR_WERE, "a singular with 'were'")):
        if pattern.search(sentence):
            found.append(what)
    return found


@pytest.mark.parametrize("bad", ["The views (256x256) was edited at 128x128 and resized back.",
                                 "Edited at 43x32 on 1 keyframes; carried to all 12 frames at 64x48.",
                                 "Kept 2 frame of the clip.", "the image was edited", "The clip were cut."])
def test_the_checker_finds_what_was_once_shown_wrong(bad):
    assert problems(bad), bad


def notices() -> list[str]:
    """Every notice template with a count or a noun in it, at one and at several."""
    out = []
    for what in ("image", "panorama", "views", "frames"):
        for how in ("guided", "resize"):
            out += resize_warning((256, 256), (128, 128), what, how)
    for keys, frames in ((1, 1), (1, 12), (4, 12), (16, 120)):
        for how in ("guided", "resize"):
            out.append(carry_note((43, 32), keys, frames, (64, 48), how))
    reading = PromptReading(subject=("fox",), drawn=("fox",), colours=("red",))
    for variant in (reading,
                    PromptReading(subject=("apple",), drawn=("red apple", "green apple"), colours=("purple",),
                                  colour_found=False, recoloured="purple"),
                    PromptReading(subject=("fox",), drawn=("fox",), colours=("red",), nearest_colour="orange"),
                    PromptReading(subject=("cat",), drawn=("cat",), colours=("teal",), colour_found=False),
                    PromptReading(subject=("cat",), drawn=("cat",), left_out=("balloon",), unknown=("zorb",),
                                  negation_dropped=("no bicycles",)),
                    PromptReading(subject=("cat",), drawn=("cat",), left_out=("balloon", "kite"),
                                  unknown=("zorb", "quux")),
                    PromptReading(subject=("cat",), drawn=("cat + top hat",), objects=("cat", "top hat"),
                                  relations=("wearing",), composed="a cat, with a top hat on its head")):
        out.append(variant.sentence("the icons prior"))
    for meta in ({"warnings": [], "input_size": [1024, 512], "work_size": [256, 128]},
                 {"warnings": ["Kept 16 of the clip's 120 frames."], "frames_note": "16 of the clip's 120 frames",
                  "sampled": True}):
        out += metrics.notices(meta)
    return out


@pytest.mark.parametrize("sentence", notices())
def test_each_notice_template_reads_as_a_sentence(sentence):
    assert not problems(sentence), (sentence, problems(sentence))
