"""Titles, texts and tags of items, generated in bulk with NumPy and joined by Arrow.

A post's text is 2-4 sentences of 6-13 words; each word is a word of the post's topic (Zipf
weights, 45%), of some other topic (5%, the noise real posts have) or a common word. Titles are
an optional opener and 2-5 topic words. Tags are 1-4 of the topic's tags, sometimes a generic
one. No per-item Python: word indices are drawn as arrays and strings are built by
`pyarrow.compute.binary_join` over list arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from serendip.data.synthetic._sampling import GroupedSampler
from serendip.data.synthetic._topics import COMMON_WORDS, GENERIC_TAGS, TITLE_OPENERS, Topic

__all__ = ["TextMaker"]

_P_TOPIC_WORD = 0.45
_P_OTHER_TOPIC_WORD = 0.05
_ZIPF = 0.7


def _zipf(n: int) -> np.ndarray:
    return 1.0 / np.arange(1, n + 1) ** _ZIPF


@dataclass(frozen=True, slots=True)
class _Lexicon:
    """Global word list; `surface` holds 4 forms per word: plain, Capitalised, plain., Capitalised."""

    words: np.ndarray
    surface: pa.Array
    common: GroupedSampler  # one group: common words
    by_topic: GroupedSampler  # group k: words of topic k
    topic_words: np.ndarray  # element -> word index, grouped by topic
    common_words: np.ndarray
    openers: np.ndarray  # word indices of title openers (already capitalised)


class TextMaker:
    """Draws titles, texts and tags for batches of items of given topics."""

    def __init__(self, topics: tuple[Topic, ...]) -> None:
        self.topics = topics
        words: list[str] = []
        index: dict[str, int] = {}

        def add(w: str) -> int:
            if w not in index:
                index[w] = len(words)
                words.append(w)
            return index[w]

        common_words = np.array([add(w) for w in COMMON_WORDS], dtype=np.int64)
        per_topic = [list(dict.fromkeys(add(w) for w in t.words)) for t in topics]
        openers = np.array([add(w) for w in TITLE_OPENERS], dtype=np.int64)
        arr = np.array(words, dtype=object)
        is_opener = np.zeros(len(words), dtype=bool)
        is_opener[openers] = True
        cap = np.array(
            [w if o else w[:1].upper() + w[1:] for w, o in zip(words, is_opener, strict=True)],
            dtype=object,
        )
        surface = pa.array(
            np.concatenate([arr, cap, arr + ".", cap + "."]).tolist(), type=pa.string()
        )
        topic_ptr = np.concatenate([[0], np.cumsum([len(p) for p in per_topic])]).astype(np.int64)
        topic_words = np.array([w for p in per_topic for w in p], dtype=np.int64)
        topic_weights = np.concatenate([_zipf(len(p)) for p in per_topic])
        self.lex = _Lexicon(
            words=arr,
            surface=surface,
            common=GroupedSampler.build(np.array([0, len(common_words)]), _zipf(len(common_words))),
            by_topic=GroupedSampler.build(topic_ptr, topic_weights),
            topic_words=topic_words,
            common_words=common_words,
            openers=openers,
        )
        self.n_words = len(words)

        tags: list[str] = []
        tag_index: dict[str, int] = {}
        for t in topics:
            for tag in (*t.tags, *GENERIC_TAGS):
                if tag not in tag_index:
                    tag_index[tag] = len(tags)
                    tags.append(tag)
        self.tag_strings = pa.array(tags, type=pa.string())
        width = max(len(t.tags) for t in topics)
        self.topic_tags = np.full((len(topics), width), -1, dtype=np.int64)
        for k, t in enumerate(topics):
            ids = list(dict.fromkeys(tag_index[x] for x in t.tags))
            self.topic_tags[k, : len(ids)] = ids
        self.generic_tags = np.array([tag_index[x] for x in GENERIC_TAGS], dtype=np.int64)
        self.categories = pa.array([t.category for t in topics], type=pa.string())

    # ------------------------------------------------------------------ words
    def _words(
        self, topic_of_token: np.ndarray, rng: np.random.Generator, p_topic: float
    ) -> np.ndarray:
        n = len(topic_of_token)
        r = rng.random(n)
        word = self.lex.common_words[self.lex.common.sample(np.zeros(n, dtype=np.int64), rng)]
        own = r < p_topic
        other = (r >= p_topic) & (r < p_topic + _P_OTHER_TOPIC_WORD)
        topic = topic_of_token.copy()
        topic[other] = rng.integers(0, len(self.topics), int(other.sum()))
        chosen = own | other
        pos = self.lex.by_topic.sample(topic[chosen], rng)
        word[chosen] = self.lex.topic_words[pos]
        return word

    def _join(
        self, codes: np.ndarray, lengths: np.ndarray, dictionary: pa.Array, sep: str
    ) -> pa.Array:
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
        values = pa.DictionaryArray.from_arrays(
            pa.array(codes.astype(np.int32)), dictionary
        ).dictionary_decode()
        return pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), values), sep)

    # ------------------------------------------------------------------ fields
    def texts(self, topic: np.ndarray, rng: np.random.Generator) -> pa.Array:
        """One text per item of `topic` (int array): 2-4 sentences, capitalised, full stops."""
        n = len(topic)
        n_sent = rng.integers(2, 5, n)
        sent_item = np.repeat(np.arange(n), n_sent)
        sent_len = rng.integers(6, 14, len(sent_item))
        tok_sent = np.repeat(np.arange(len(sent_len)), sent_len)
        word = self._words(topic[sent_item[tok_sent]], rng, _P_TOPIC_WORD)
        ends = np.cumsum(sent_len)
        form = np.zeros(len(word), dtype=np.int64)
        form[ends - sent_len] += 1  # capitalised
        form[ends - 1] += 2  # full stop
        codes = form * self.n_words + word
        tokens_per_item = np.bincount(sent_item, weights=sent_len, minlength=n).astype(np.int64)
        return self._join(codes, tokens_per_item, self.lex.surface, " ")

    def titles(self, topic: np.ndarray, rng: np.random.Generator) -> pa.Array:
        """Short titles: optional opener, then 2-5 topic-heavy words; first word capitalised."""
        n = len(topic)
        has_opener = rng.random(n) < 0.4
        n_words = rng.integers(2, 6, n)
        lengths = n_words + has_opener
        tok_item = np.repeat(np.arange(n), lengths)
        word = self._words(topic[tok_item], rng, 0.85)
        first = np.cumsum(lengths) - lengths
        opener_items = np.flatnonzero(has_opener)
        word[first[opener_items]] = self.lex.openers[
            rng.integers(0, len(self.lex.openers), len(opener_items))
        ]
        form = np.zeros(len(word), dtype=np.int64)
        form[first] = 1
        return self._join(form * self.n_words + word, lengths, self.lex.surface, " ")

    def tags(self, topic: np.ndarray, rng: np.random.Generator) -> pa.Array:
        """1-4 distinct tags of the topic (Zipf-weighted, Gumbel top-k), plus a generic one at times."""
        n = len(topic)
        table = self.topic_tags[topic]  # (n, width), -1 = padding
        width = table.shape[1]
        score = np.log(_zipf(width))[None, :] + rng.gumbel(size=(n, width))
        score[table < 0] = -np.inf
        order = np.argsort(-score, axis=1)
        available = (table >= 0).sum(axis=1)
        m = np.minimum(rng.integers(1, 5, n), available)
        ranked = np.take_along_axis(table, order, axis=1)
        keep = np.arange(width)[None, :] < m[:, None]
        generic = rng.random(n) < 0.15
        extra = np.full((n, 1), -1, dtype=np.int64)
        extra[generic, 0] = self.generic_tags[
            rng.integers(0, len(self.generic_tags), int(generic.sum()))
        ]
        ranked = np.concatenate([ranked, extra], axis=1)
        keep = np.concatenate([keep, generic[:, None]], axis=1)
        codes = ranked[keep]  # row-major: each item's tags stay together, in order
        return self._join(codes, keep.sum(axis=1), self.tag_strings, "|")

    def categories_of(self, topic: np.ndarray) -> pa.Array:
        return self.categories.take(pa.array(topic.astype(np.int64)))
