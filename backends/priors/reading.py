"""How a retrieval prior reads a prompt as a person means it: the main object, its colour, and what it leaves out.

A bag of words retrieves badly for how people write prompts: in "a red bicycle" the colour outscores the noun
(red circles win), in "a robot holding a balloon" two objects share the weight and score distillation draws a
blend, and "a bicycle" finds the "no bicycles" sign first. `read_prompt` splits a prompt into what it names:

- phrases, cut at relation words ("holding", "wearing", "on", "with", ...): the first phrase whose words the
  prior knows names the main object; later phrases are left out (one object per picture) and said so;
- the head noun of that phrase (its last known word: "hot air *balloon*", "a slice of *pizza*"; not a generic
  word like "sign" while there is another: "a no *bicycles* sign") must occur in every retrieved item, the phrase's
  other words rank among them;
- colour words are taken out of the retrieval and choose among the matches by their pixels (`colour_shares`);
- negation items ("no bicycles", "prohibited") are only retrieved when the prompt asks for a negation.

A prompt that is itself an item's name ("heart with arrow", "man in tuxedo") is read whole.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .text_match import STOP_WORDS, stem

_WORD = re.compile(r"[a-z0-9]+")

# Words that relate a second thing to the main one: the phrase before the first of them names the main object.
RELATIONS = frozenset("""
with without holding holds hold wearing wears wear on in inside over under above below beside behind near next
and riding rides eating eats drinking drinks playing plays sitting sits standing stands flying flies swimming
swims jumping jumps running runs looking looks carrying carries against across through into onto at for from
while among between surrounded covered filled made
""".split())

# Nouns that name a kind of picture, not its object ("a no smoking sign", "a rocket symbol"): never the head noun
# while the phrase has another known word.
GENERIC = frozenset("sign symbol logo picture image drawing shape thing object".split())

# Asking for a negation: only then do "no bicycles" / "prohibited" items count.
NEGATIONS = frozenset("no not non prohibited prohibit forbidden forbid ban banned banning".split())

# Colour words (and their synonyms) -> one of the colour classes `colour_shares` measures.
COLOURS = {
    "red": "red", "crimson": "red", "scarlet": "red", "maroon": "red",
    "orange": "orange",
    "yellow": "yellow", "gold": "yellow", "golden": "yellow",
    "green": "green", "lime": "green", "olive": "green",
    "blue": "blue", "navy": "blue", "cyan": "blue", "turquoise": "blue", "teal": "blue", "azure": "blue",
    "purple": "purple", "violet": "purple", "lilac": "purple", "lavender": "purple",
    "pink": "pink", "magenta": "pink",
    "brown": "brown",
    "black": "black",
    "white": "white",
    "gray": "gray", "grey": "gray", "silver": "gray",
}
COLOUR_CLASSES = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "black", "white", "gray")

# The style suffixes' phrases that are not a request for a colour ("... on a white background").
_NOT_A_COLOUR = re.compile(r"\bwhite background\b")


@dataclass(frozen=True)
class Phrase:
    """A run of prompt words between relation words: its content words (stemmed, and as typed) and colour classes."""

    words: tuple[str, ...]
    colours: tuple[str, ...]
    typed: tuple[str, ...] = ()


@dataclass(frozen=True)
class PromptParts:
    """A prompt split for retrieval: phrases in order, whether it asks for a negation."""

    phrases: tuple[Phrase, ...]
    negation: bool
    whole: tuple[str, ...] = field(default=())  # every content word, in order (for the whole-name check)


def read_prompt(prompt: str, stop_words=STOP_WORDS) -> PromptParts:
    """Split `prompt` into phrases at relation words; keep each phrase's content words (stemmed, without stop
    words) and colours. Stop words are compared before stemming, as `text_match.tokenize` does."""
    text = _NOT_A_COLOUR.sub(" background", prompt.lower())
    raw = _WORD.findall(text)
    negation = any(w in NEGATIONS for w in raw)
    phrases, words, colours, typed, whole = [], [], [], [], []
    for w in raw:
        if w in RELATIONS:
            if words or colours:
                phrases.append(Phrase(tuple(words), tuple(colours), tuple(typed)))
            words, colours, typed = [], [], []
        elif w in COLOURS:
            colours.append(COLOURS[w])
        elif w not in stop_words:
            words.append(stem(w))
            typed.append(w)
            whole.append(stem(w))
    if words or colours:
        phrases.append(Phrase(tuple(words), tuple(colours), tuple(typed)))
    return PromptParts(tuple(phrases), negation, tuple(whole))


def colour_shares(images: np.ndarray, chunk: int = 256) -> np.ndarray:
    """(N, len(COLOUR_CLASSES)) float32: the share of each icon's own pixels in each colour class.

    images: (N, H, W, 3) uint8 over a white background. The icon's own pixels are all but the white ones connected
    to the border (so a white cat's white fur counts as white). Classes by HSV: black (value < 0.25), white
    (saturation < 0.12, value > 0.85), gray (other low saturation), brown (orange hues, value < 0.65), and hue bins
    for red, orange, yellow, green, blue (cyan included), purple and pink."""
    from scipy import ndimage

    out = np.zeros((len(images), len(COLOUR_CLASSES)), dtype=np.float32)
    for lo in range(0, len(images), chunk):
        x = images[lo:lo + chunk].astype(np.float32) / 255.0
        mx, mn = x.max(-1), x.min(-1)
        v, s = mx, np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
        r, g, b = x[..., 0], x[..., 1], x[..., 2]
        d = np.maximum(mx - mn, 1e-6)
        h = np.where(mx == r, ((g - b) / d) % 6, np.where(mx == g, (b - r) / d + 2, (r - g) / d + 4)) * 60.0
        white = (s < 0.12) & (v > 0.85)
        black = v < 0.25
        gray = (s < 0.15) & ~white & ~black
        chroma = ~(white | black | gray)
        brown = chroma & (h >= 10) & (h < 45) & (v < 0.65)
        hue = chroma & ~brown
        classes = {
            "red": hue & ((h < 12) | (h >= 340)),
            "orange": hue & (h >= 12) & (h < 40),
            "yellow": hue & (h >= 40) & (h < 70),
            "green": hue & (h >= 70) & (h < 165),
            "blue": hue & (h >= 165) & (h < 255),
            "purple": hue & (h >= 255) & (h < 295),
            "pink": hue & (h >= 295) & (h < 340),
            "brown": brown, "black": black, "white": white, "gray": gray,
        }
        for i in range(len(x)):
            labels, _ = ndimage.label(white[i])
            edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
            background = np.isin(labels, edge[edge > 0])
            own = max(int((~background).sum()), 1)
            for j, name in enumerate(COLOUR_CLASSES):
                out[lo + i, j] = float((classes[name][i] & ~background).sum()) / own
    return out
