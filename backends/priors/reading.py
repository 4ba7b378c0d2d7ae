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
while among between surrounded covered filled made reading reads beneath underneath atop upon by ride dressed
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


# Relation words by the layout they ask for (`Understood.relations`): the first kind (in this order) that a link's
# words name wins, so "sitting on" is "on" and "jumping over" is "over". A worn thing's link ("with a hat", "in a
# crown") is "wearing" whatever its words (`WEARABLES`).
RELATION_KINDS = {
    "wearing": frozenset("wearing wears wear dressed".split()),
    "riding": frozenset("riding rides ride".split()),
    "under": frozenset("under below beneath underneath".split()),
    "over": frozenset("over above".split()),
    "on": frozenset("on onto atop upon top".split()),
    "in": frozenset("in inside into".split()),
    "beside": frozenset("and next beside near by behind front besides alongside".split()),
    "holding": frozenset("with holding holds hold carrying carries eating eats drinking drinks playing plays "
                         "reading reads".split()),
}
RELATION_ORDER = tuple(RELATION_KINDS)

# Things worn: linked by "wearing", "with" or "in", they go on the wearer ("a cat in a top hat").
WEARABLES = frozenset(stem(w) for w in "hat cap crown helmet glasses sunglasses goggles scarf necktie tie bow "
                      "tiara mask wig beret".split())

# Words that measure or portion a food ("a slice of pizza", "a cup of coffee", "a watermelon slice"): never the head
# noun while the phrase names another known thing.
MEASURES = frozenset("slice slices piece pieces cup cups bowl bowls glass glasses plate plates bottle mug jar bag "
                     "box bunch pile loaf scoop stack pot can basket handful serving portion wedge".split())

# Settings rather than things ("at night", "in the snow"): drawn as a small backdrop icon behind, named by its exact
# caption.
BACKDROPS = {"night": "crescent moon", "snow": "snowflake", "snowy": "snowflake", "winter": "snowflake",
             "rain": "cloud with rain", "rainy": "cloud with rain", "storm": "cloud with lightning",
             "autumn": "fallen leaf", "fall": "fallen leaf", "space": "ringed planet", "sky": "cloud",
             "sun": "sun", "sunshine": "sun", "summer": "sun", "stars": "glowing star"}

# Words ending in -ing that are nouns, not verbs ("a watercolor painting of a sunflower").
NOT_VERBS = frozenset("painting drawing building ring king wing string ceiling pudding evening morning clothing "
                      "sibling ping icing swing spring sing thing nothing something".split())


@dataclass(frozen=True)
class Phrase:
    """A run of prompt words between relation words: its content words (stemmed, and as typed), colour classes, and
    the relation words (as typed) that link it to what came before (empty for the first)."""

    words: tuple[str, ...]
    colours: tuple[str, ...]
    typed: tuple[str, ...] = ()
    link: tuple[str, ...] = ()


@dataclass(frozen=True)
class PromptParts:
    """A prompt split for retrieval: phrases in order, whether it asks for a negation."""

    phrases: tuple[Phrase, ...]
    negation: bool
    whole: tuple[str, ...] = field(default=())  # every content word, in order (for the whole-name check)


def _is_verb(word: str) -> bool:
    return len(word) > 4 and word.endswith("ing") and word not in NOT_VERBS


def read_prompt(prompt: str, stop_words=STOP_WORDS) -> PromptParts:
    """Split `prompt` into phrases at relation words; keep each phrase's content words (stemmed, without stop
    words), colours, and the relation words before it. Stop words are compared before stemming, as
    `text_match.tokenize` does. A verb in -ing after a named thing is a relation too ("a koala *sleeping* on a
    branch", "a fox *reading* a book"); before any ("a sleeping cat") it describes the thing. "on top of" and
    "in front of" are relations, not a top or a front."""
    text = _NOT_A_COLOUR.sub(" background", prompt.lower())
    raw = _WORD.findall(text)
    negation = any(w in NEGATIONS for w in raw)
    phrases, words, colours, typed, whole, link = [], [], [], [], [], []
    started = False  # a thing has been named: an -ing word from now on relates the next one to it
    prev = ""
    for w in raw:
        relation = (w in RELATIONS or (started and _is_verb(w))
                    or (w in ("top", "front") and prev in ("on", "in")))
        if relation:
            if words or colours:
                phrases.append(Phrase(tuple(words), tuple(colours), tuple(typed), tuple(link)))
                link = []
            words, colours, typed = [], [], []
            link.append(w)
        elif w in COLOURS:
            colours.append(COLOURS[w])
        elif w not in stop_words:
            words.append(stem(w))
            typed.append(w)
            whole.append(stem(w))
            started = True
        prev = w
    if words or colours:
        phrases.append(Phrase(tuple(words), tuple(colours), tuple(typed), tuple(link)))
    return PromptParts(tuple(phrases), negation, tuple(whole))


def head_word(words, known) -> str | None:
    """The head noun of a phrase's stemmed `words`: its last word in `known` that is neither a generic picture word
    ("sign") nor a measure ("slice", "cup"), else its last known word; None when it knows none."""
    kw = [w for w in words if w in known]
    return next((w for w in reversed(kw) if w not in GENERIC and w not in MEASURES), kw[-1] if kw else None)


# Things people name that the icons show under another caption, for a second or third thing (whose icons must
# carry the thing in their caption, or come from here: a "branch" tag finds only nests).
ALIASES = {"coffee": "hot beverage", "tea": "teacup without handle", "sea": "water wave", "ocean": "water wave",
           "waves": "water wave", "wave": "water wave", "water": "water wave", "hill": "mountain",
           "hills": "mountain", "mountains": "mountain", "lake": "water wave", "river": "water wave",
           "ice": "ice", "iceberg": "ice", "stars": "glowing star", "flowers": "tulip"}


# The icon a person pictures for a thing with several ("a hat": a top hat, not a woman's hat), first among its
# matches when it is a second or third thing.
USUAL = {"hat": "top hat", "ball": "soccer ball", "moon": "crescent moon", "book": "closed book",
         "tree": "deciduous tree", "flower": "tulip", "star": "star", "car": "automobile", "cup": "hot beverage"}


def relation_kind(link: tuple[str, ...], head: str) -> str:
    """The layout a linked thing asks for (a key of RELATION_KINDS): "wearing" for a worn thing linked by "with",
    "in" or a wearing word; else the first kind in RELATION_ORDER that the link names; a verb it does not list
    ("flying", "jumping") sets the things side by side, unless it is followed by a preposition."""
    words = set(link)
    if words - {"and"}:  # "and holding a balloon": the verb says how
        words -= {"and"}
    if head in WEARABLES and words & (RELATION_KINDS["wearing"] | {"with", "in", "has", "have"}):
        return "wearing"
    for kind in RELATION_ORDER:
        if words & RELATION_KINDS[kind]:
            return kind
    return "beside"


@dataclass(frozen=True)
class Understood:
    """A prompt read as a person means it: the things it names (each as typed, its head noun stemmed), how each
    after the first relates to the first (a key of RELATION_KINDS), the backdrop (a BACKDROPS word) and the known
    things beyond the third (left out).

    objects: ((typed words, head), ...) in prompt order, at most 3; relations: one kind per object after the
    first."""

    objects: tuple[tuple[tuple[str, ...], str], ...]
    relations: tuple[str, ...]
    backdrop: str | None
    extra: tuple[str, ...] = ()


MAX_OBJECTS = 3


def understand(parts: PromptParts, known) -> Understood:
    """The things a split prompt names (phrases whose words `known` holds, at most MAX_OBJECTS), their relations
    to the first, and the backdrop: a later phrase whose head is a BACKDROPS word ("at night", "in the snow").
    known: a container of stemmed words (the prior's vocabulary)."""
    objects, relations, backdrop, extra = [], [], None, []
    for i, ph in enumerate(parts.phrases):
        head = head_word(ph.words, known)
        if head is None:
            continue
        typed_head = next((t for w, t in zip(ph.words, ph.typed) if w == head), head)
        if typed_head in MEASURES and len(ph.words) == 1 and objects:  # "with a slice": nothing new named
            continue
        if objects and backdrop is None and typed_head in BACKDROPS and len(ph.words) == 1:
            backdrop = typed_head
            continue
        if len(objects) == MAX_OBJECTS:
            extra.append(" ".join(ph.typed))
            continue
        if objects:
            relations.append(relation_kind(ph.link, head))
        objects.append((ph.typed, head))
    return Understood(tuple(objects), tuple(relations), backdrop, tuple(extra))


RELATION_WORDS = {"wearing": "on its head", "holding": "held at its side", "riding": "riding", "on": "on",
                  "in": "in", "under": "under", "over": "over", "beside": "beside"}


def _placed(rel: str, thing: str, other: str, head: str) -> str:
    """How a composed thing is placed, in words ("with a top hat on its head")."""
    if rel == "wearing":
        where = ("on its head" if head in HEAD_WORN else "over its eyes" if head in EYE_WORN else "at its neck")
        return f"with {_a(other)} {where}"
    return {"holding": f"holding {_a(other)} at its side", "riding": f"riding {_a(other)}",
            "on": f"on {_a(other)}", "in": f"in {_a(other)}", "under": f"under {_a(other)}",
            "over": f"over {_a(other)}", "beside": f"beside {_a(other)}"}[rel]


HEAD_WORN = frozenset(stem(w) for w in "hat cap crown helmet tiara wig beret bow".split())
EYE_WORN = frozenset(stem(w) for w in "glasses sunglasses goggles mask".split())


def _a(name: str) -> str:
    """The name with its article; none for a plural ("books", "sunglasses")."""
    if name.endswith("s") and not name.endswith("ss"):
        return name
    return ("an " if name[:1].lower() in "aeiou" else "a ") + name


def thing_name(typed: tuple[str, ...]) -> str:
    """A thing's words as typed, without measure words ("cup coffee" -> "coffee"); whole when all are measures."""
    return " ".join(w for w in typed if w not in MEASURES) or " ".join(typed)


def composition_sentence(drawn: list[str], asked: list[tuple[str, ...]], relations: list[str],
                         backdrop: str | None, captions=()) -> str:
    """What a composition draws and how, in words: "a cat, with a top hat on its head: no wizard hat among the
    icons". drawn: the best icon caption of each thing; asked: each thing's words as typed; relations: one per
    thing after the first; backdrop: a BACKDROPS word or None."""
    parts = [_a(drawn[0])]
    for rel, name, words in zip(relations, drawn[1:], asked[1:]):
        parts.append(_placed(rel, name, name, stem(words[-1]) if words else ""))
    text = ", ".join(parts)
    if backdrop:
        text += f", with {_a(BACKDROPS[backdrop])} behind for the {backdrop}"
    asked = [tuple(thing_name(w).split()) for w in asked]
    missing = [" ".join(w) for w, d in zip(asked, drawn)
               if not {stem(x) for x in w} <= {stem(x) for x in d.lower().replace("-", " ").split()}]
    if missing:
        text += ": no " + ", no ".join(missing) + " among the icons"
    return text


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
