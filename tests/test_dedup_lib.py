"""The deduplication library: shingles and signatures against datasketch, LSH parameters, spilled buckets,
clustering and keep rules, recall and precision on planted near duplicates."""

import numpy as np
import pytest

from fmaudit.dedup import (MinHasher, Normalizer, Shingler, UnionFind, choose_keepers, collision_probability,
                           exact_jaccard, optimal_params, shingle_hash)
from fmaudit.dedup.global_step import find_duplicates
from fmaudit.dedup.signatures import exact_arrays, near_arrays
from fmaudit.dedup.store import SignatureStore, write_shard
from fmaudit.dedup.synthetic import planted_corpus

datasketch = pytest.importorskip("datasketch")

TEXTS = ["the quick brown fox jumps over the lazy dog again and again", "short", "", "a  b\tc d e f g",
         "héllo wörld ünïcode text\u3000here now", "one two", " lead trail ", "x" * 700]


@pytest.mark.parametrize("kind,size", [("word", 1), ("word", 3), ("word", 5), ("char", 1), ("char", 5)])
def test_batched_shingle_hashes_equal_the_reference(kind, size):
    shingler = Shingler(kind, size)
    hashes, offsets = shingler.hashes(TEXTS)
    for i, text in enumerate(TEXTS):
        expected = np.unique(np.array([shingle_hash(s) for s in shingler.iter_shingles(text)], dtype=np.uint32))
        assert np.array_equal(hashes[offsets[i]:offsets[i + 1]], expected), (kind, size, text)
    assert offsets[3] - offsets[2] == 0  # the empty text has no shingle


def test_signatures_are_datasketch_affine32_bit_for_bit():
    shingler, hasher = Shingler("word", 3), MinHasher(96, seed=7)
    sig = hasher.signatures(*shingler.hashes(TEXTS))
    for i, text in enumerate(TEXTS):
        m = datasketch.MinHash(96, seed=7, hashfunc=shingle_hash)
        m.update_batch(list(shingler.iter_shingles(text)))
        assert m.scheme == "affine32" and np.array_equal(m.hashvalues, sig[i]), i


def test_normalizer_options():
    text = "Ｈello,  WORLD!\nIt's 2024."
    assert Normalizer()(text) == "hello world it s 2024"
    assert Normalizer(digits=True)(text) == "hello world it s 0000"
    assert Normalizer(unicode=False, lowercase=False, punctuation=False)(text) == "Ｈello, WORLD! It's 2024."


def test_optimal_params_match_datasketch():
    from datasketch.lsh import _optimal_param

    for threshold, num_perm in ((0.5, 64), (0.8, 128), (0.9, 128)):
        assert optimal_params(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)
    assert optimal_params(0.8, 128, 0.2, 0.8) != optimal_params(0.8, 128)  # weights move the S-curve
    assert collision_probability(1.0, 9, 13) == 1.0 and collision_probability(0.0, 9, 13) == 0.0


def test_union_find_and_keep_rules():
    uf = UnionFind(6)
    uf.union(4, 1)
    uf.union(1, 3)
    labels = uf.labels()
    assert len({labels[1], labels[3], labels[4]}) == 1 and labels[0] != labels[1]
    lengths = np.array([5, 2, 0, 9, 9, 1])
    hashes = np.array([0, 30, 0, 20, 10, 0], dtype=np.uint64)
    assert choose_keepers(labels, "first", lengths, hashes)[[1, 3, 4]].tolist() == [1, 1, 1]
    assert choose_keepers(labels, "longest", lengths, hashes)[[1, 3, 4]].tolist() == [3, 3, 3]  # tie: earlier
    assert choose_keepers(labels, "id_hash", lengths, hashes)[[1, 3, 4]].tolist() == [4, 4, 4]


def _sign(tmp_path, texts, threshold, shard=100, exact=False, **kw):
    norm, shingler, hasher = Normalizer(), Shingler("word", 5), MinHasher(128, 1)
    bands, rows = optimal_params(threshold, 128, 0.2, 0.8)
    shards = 0
    for start in range(0, len(texts), shard):
        chunk, ids = texts[start:start + shard], [f"d{start + i}" for i in range(len(texts[start:start + shard]))]
        arrays = exact_arrays(ids, chunk, norm) if exact else near_arrays(ids, chunk, norm, shingler, hasher, bands, rows)
        write_shard(tmp_path / "sig", shards, ids, arrays)
        shards += 1
    store = SignatureStore(tmp_path / "sig", shards)
    return find_duplicates(store, tmp_path / "work", keep="first", threshold=None if exact else threshold, **kw)


def test_planted_near_duplicates_recall_and_precision(tmp_path):
    threshold = 0.7
    texts, planted = planted_corpus(500, share=0.3, edit_rates=(0.0, 0.005, 0.01, 0.1, 0.2), seed=3)
    norm, shingler = Normalizer(), Shingler("word", 5)
    hashes, offsets = shingler.hashes([norm(t) for t in texts])
    sets = [hashes[offsets[i]:offsets[i + 1]] for i in range(len(texts))]
    truth = {(p.original, p.copy): exact_jaccard(sets[p.original], sets[p.copy]) for p in planted}
    positives = {pair for pair, j in truth.items() if j >= threshold}
    negatives = {pair for pair, j in truth.items() if j < threshold}
    assert len(positives) > 50 and len(negatives) > 50
    assert max(truth[p] for p in negatives) < 0.5 and min(truth[p] for p in positives) > 0.8  # clear of the threshold

    result = _sign(tmp_path, texts, threshold, max_rows=64)  # tiny partitions: many spill files
    assert result.partitions > 20
    found = {tuple(sorted((d.keeper, d.doc))) for d in result.duplicates}
    planted_pairs = {tuple(sorted(p)) for p in truth}
    recall = len({tuple(sorted(p)) for p in positives} & found) / len(positives)
    found_planted = found & planted_pairs
    precision = len(found_planted & {tuple(sorted(p)) for p in positives}) / len(found_planted)
    assert recall >= 0.95 and precision >= 0.95, (recall, precision)
    assert all(d.similarity >= threshold for d in result.duplicates)
    assert all(abs(d.similarity - d.estimated_similarity) < 0.2 for d in result.duplicates)
    assert result.candidate_pairs >= len(result.duplicates)

    unspilled = _sign(tmp_path / "b", texts, threshold, max_rows=1 << 20)
    assert unspilled.partitions < result.partitions
    assert [(d.doc, d.keeper, d.similarity) for d in unspilled.duplicates] == \
        [(d.doc, d.keeper, d.similarity) for d in result.duplicates]


def test_exact_duplicates_by_normalised_digest(tmp_path):
    texts = ["Hello, World!", "hello world", "HELLO   world.", "something else", "hello there world"]
    result = _sign(tmp_path, texts, 1.0, shard=2, exact=True)
    assert [(d.doc, d.keeper, d.similarity) for d in result.duplicates] == [(1, 0, 1.0), (2, 0, 1.0)]
    assert result.cluster_sizes == {3: 1}
