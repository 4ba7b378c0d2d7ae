"""A small text retriever: which of a few thousand captioned items does a prompt name?

Used by the exact-score priors (`icons`, `edits`) to turn a prompt into a set of real examples. Pure Python and
numpy, no model: tokens are lowercased words, lightly stemmed (plural and -ing endings), minus stop words;
documents are scored by BM25 over two fields, the caption (weighted higher) and the tags (acting as synonyms:
"kitty" finds the cat whose tags say so). When nothing matches, `suggest` ranks captions by character-trigram
similarity, so a message can name the closest captions instead of just failing.
"""
from __future__ import annotations

import re
from collections import Counter
from typing import Iterable, Sequence

import numpy as np

# Plain English function words: they never name an object, and "a" or "of" would otherwise match every caption
# that happens to contain them.
STOP_WORDS = frozenset("""
a an the of on in at to for from by with without and or but is are be been being it its this that these those
as into onto over under some any very much many few more most one two three s i you he she we they my your
his her our their me him us them there here up down out off than then so such just also too not no nor
""".split())

_WORD = re.compile(r"[a-z0-9]+")


def stem(word: str) -> str:
    """A light suffix stripper (plural, -ing): enough to make "pizzas", "cherries", "boxes", "running" meet
    "pizza", "cherry", "box", "run". Words of 3 letters or fewer are kept whole (bus, gas, its)."""
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "sses", "xes", "zes")):
        return word[:-2]
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    if word.endswith("ing") and len(word) > 5:
        w = word[:-3]
        return w[:-1] if len(w) > 2 and w[-1] == w[-2] else w  # running -> run
    return word


def tokenize(text: str, stop_words: Iterable[str] = STOP_WORDS) -> list[str]:
    """Lowercased, stemmed word tokens of `text`, stop words removed (compared before stemming)."""
    stop = stop_words if isinstance(stop_words, (set, frozenset)) else set(stop_words)
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in stop]


def _trigrams(text: str) -> set[str]:
    t = f"  {' '.join(_WORD.findall(text.lower()))} "
    return {t[i:i + 3] for i in range(len(t) - 2)}


class TextIndex:
    """BM25 over captions and tags, built once.

    captions: one string per document; tags: per document a list of strings (or None). A term's frequency in a
    document is caption_weight * (count in caption) + tag_weight * (count in tags) (BM25F with one shared length
    normalisation), so a word in the caption outranks the same word as a tag. k1, b: BM25's usual constants.
    cover_bonus: added times the fraction of a caption's words that the query names (whole-caption matches win).
    stop_words: dropped from documents and queries alike.
    """

    def __init__(
        self,
        captions: Sequence[str],
        tags: Sequence[Sequence[str]] | None = None,
        *,
        stop_words: Iterable[str] = STOP_WORDS,
        caption_weight: float = 3.0,
        tag_weight: float = 1.0,
        k1: float = 1.2,
        b: float = 0.75,
        cover_bonus: float = 2.0,
    ):
        self.captions = [str(c) for c in captions]
        self.stop_words = frozenset(stop_words)
        tags = tags if tags is not None else [[] for _ in self.captions]
        if len(tags) != len(self.captions):
            raise ValueError(f"{len(self.captions)} captions but {len(tags)} tag lists")
        self.k1, self.b = k1, b
        self.cover_bonus = cover_bonus
        self.vocab: dict[str, int] = {}
        per_doc, lengths, caption_tokens = [], [], []
        for cap, tg in zip(self.captions, tags):
            tf: Counter = Counter()
            cap_toks = tokenize(cap, self.stop_words)
            for tok in cap_toks:
                tf[tok] += caption_weight
            for tok in tokenize(" ".join(tg), self.stop_words):
                tf[tok] += tag_weight
            per_doc.append(tf)
            lengths.append(sum(tf.values()))
            caption_tokens.append(frozenset(cap_toks))
            for tok in tf:
                self.vocab.setdefault(tok, len(self.vocab))
        n = len(self.captions)
        length = np.asarray(lengths, dtype=np.float64)
        norm = k1 * (1 - b + b * length / max(float(length.mean()), 1e-9))
        # postings: per term the documents holding it, their BM25 contribution, and the share of the caption's
        # words that this term is (a query that names every word of a caption gets cover_bonus on top, so "a
        # cat" prefers "cat" over "pouting cat", whose longer tag list BM25 would otherwise reward)
        docs: list[list[int]] = [[] for _ in self.vocab]
        bm25: list[list[float]] = [[] for _ in self.vocab]
        cover: list[list[float]] = [[] for _ in self.vocab]
        for i, tf in enumerate(per_doc):
            for tok, f in tf.items():
                v = self.vocab[tok]
                docs[v].append(i)
                bm25[v].append(f * (k1 + 1) / (f + norm[i]))
                cover[v].append(1.0 / len(caption_tokens[i]) if tok in caption_tokens[i] else 0.0)
        df = np.array([len(d) for d in docs], dtype=np.float64)
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        self._postings = [(np.asarray(d, dtype=np.int64),
                           (idf[v] * np.asarray(w)).astype(np.float32),
                           np.asarray(c, dtype=np.float32))
                          for v, (d, w, c) in enumerate(zip(docs, bm25, cover))]
        self._trigrams = [_trigrams(c) for c in self.captions]
        self.caption_terms = caption_tokens  # per document, the set of its caption's terms

    def __len__(self) -> int:
        return len(self.captions)

    def query_terms(self, query: str) -> list[str]:
        """The query's tokens that some document contains (the words that drive retrieval)."""
        return [t for t in dict.fromkeys(tokenize(query, self.stop_words)) if t in self.vocab]

    def scores(self, query: str) -> np.ndarray:
        """(N,) float32 score of every document for `query`: BM25 plus the caption-cover bonus (0 where no query
        word occurs)."""
        return self.term_scores(self.query_terms(query))

    def term_scores(self, terms) -> np.ndarray:
        """`scores` for already tokenized terms (stemmed; those not in the vocabulary are ignored)."""
        out = np.zeros(len(self.captions), dtype=np.float32)
        for t in dict.fromkeys(t for t in terms if t in self.vocab):
            docs, w, cover = self._postings[self.vocab[t]]
            out[docs] += w + self.cover_bonus * cover  # a document holds a term once: no repeated indices
        return out

    def holding(self, term: str) -> np.ndarray:
        """(M,) int64 ids of the documents that contain `term` (caption or tags); empty when it is unknown."""
        v = self.vocab.get(term)
        return self._postings[v][0] if v is not None else np.zeros(0, dtype=np.int64)

    def match(self, query: str, k: int = 10) -> list[tuple[int, float]]:
        """The k best documents as (index, score), best first, only those with a positive score; ties keep
        document order (stable), so results are deterministic."""
        s = self.scores(query)
        order = np.argsort(-s, kind="stable")[:k]
        return [(int(i), float(s[i])) for i in order if s[i] > 0]

    def suggest(self, query: str, k: int = 5) -> list[tuple[str, float]]:
        """The k captions closest to `query` by character-trigram (Jaccard) similarity, distinct captions only,
        best first: what to offer when `match` finds nothing ("no icon matches 'pizzza'; closest: pizza")."""
        words = " ".join(w for w in _WORD.findall(query.lower()) if w not in self.stop_words)
        q = _trigrams(words)
        best: dict[str, float] = {}
        for cap, grams in zip(self.captions, self._trigrams):
            sim = len(q & grams) / max(len(q | grams), 1)
            if sim > best.get(cap, -1.0):
                best[cap] = sim
        ranked = sorted(best.items(), key=lambda kv: -kv[1])  # sorted() is stable: ties keep document order
        return ranked[:k]
