"""The pipeline's serving adapter: a request's few live IDs looked up one by one."""

from __future__ import annotations

import numpy as np

from serendip.data.vocabulary import Vocabulary
from serendip.pipeline.serving import _FEW_IDS, _indices


def test_few_ids_are_looked_up_as_the_vocabulary_does() -> None:
    vocab = Vocabulary([f"i{k}" for k in range(200)])
    few = ["i3", "nope", "i199", "i3"]
    got = _indices(vocab, few)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, vocab.indices(few))
    np.testing.assert_array_equal(got, [3, -1, 199, 3])
    many = [f"i{k}" for k in range(_FEW_IDS + 5)] + ["nope"]
    np.testing.assert_array_equal(_indices(vocab, many), vocab.indices(many))
    assert _indices(vocab, []).tolist() == []
