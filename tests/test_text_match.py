"""The shared text retriever: stemming, stop words, BM25 ranking over captions and tags, suggestions."""
import time  # bounds below are process CPU seconds (work), not wall clock: a busy machine stretches only the latter

import pytest

from backends.priors.text_match import TextIndex, stem, tokenize

CAPTIONS = ["pizza", "red apple", "green apple", "fox", "cat", "pouting cat", "red heart", "hot dog", "dog",
            "red circle", "red square"]
TAGS = [["food", "cheese", "slice"], ["fruit", "red"], ["fruit", "green"], ["animal", "face"], ["pet", "kitty"],
        ["cat", "face", "angry"], ["love"], ["frankfurter", "sausage"], ["pet", "puppy"],
        ["shape", "red"], ["shape", "red"]]


@pytest.fixture(scope="module")
def index():
    return TextIndex(CAPTIONS, TAGS)


def test_stemmer_maps_plurals_and_ing_forms_onto_the_stem():
    assert [stem(w) for w in ["pizzas", "cherries", "boxes", "running", "glasses", "bus", "cactus"]] == \
        ["pizza", "cherry", "box", "run", "glass", "bus", "cactus"]


def test_tokenize_lowercases_and_drops_stop_words():
    assert tokenize("A Slice of the Pizzas") == ["slice", "pizza"]


def test_caption_word_outranks_the_same_word_as_a_tag(index):
    # "cat" is the caption of doc 4 and a tag of doc 5 ("pouting cat"): the caption match wins
    assert index.match("a cat", 1)[0][0] == 4


def test_tags_act_as_synonyms(index):
    assert index.match("a kitty", 1)[0][0] == 4
    assert index.match("a sausage", 1)[0][0] == 7


def test_the_rarer_word_decides_and_the_colour_reweights(index):
    top = [CAPTIONS[i] for i, _ in index.match("a red fox", 3)]
    assert top[0] == "fox"
    ranked = [CAPTIONS[i] for i, _ in index.match("a red apple", 3)]
    assert ranked[:2] == ["red apple", "green apple"]


def test_whole_caption_match_beats_partial(index):
    # "dog" matches "dog" whole and "hot dog" by half: the whole-caption match comes first
    assert [CAPTIONS[i] for i, _ in index.match("dog", 2)] == ["dog", "hot dog"]


def test_extra_stop_words_do_not_drive_retrieval():
    plain = TextIndex(CAPTIONS + ["flat shoe"], TAGS + [["shoe"]])
    styled = TextIndex(CAPTIONS + ["flat shoe"], TAGS + [["shoe"]], stop_words={"flat", "a", "of"})
    q = "a fox. flat"
    assert 11 in [i for i, _ in plain.match(q, 10)]  # without the stop word "flat" drags in the flat shoe
    assert [i for i, _ in styled.match(q, 10)] == [3]


def test_no_match_returns_empty_and_suggest_names_the_closest_caption(index):
    assert index.match("xyzzy", 5) == []
    assert index.suggest("pizzza", 1)[0][0] == "pizza"
    assert len({c for c, _ in index.suggest("zzz", 5)}) == 5  # distinct captions


def test_query_on_a_few_thousand_documents_takes_well_under_10_ms():
    caps = [f"{w} {i}" for i in range(1000) for w in ("apple", "pear", "plum")]
    big = TextIndex(caps, [["fruit", f"tag{i % 97}"] for i in range(len(caps))])
    big.match("a red apple", 10)
    t0 = time.process_time()
    for _ in range(20):
        big.match("a red apple with tag5", 10)
    assert (time.process_time() - t0) / 20 < 0.01
