"""coco-caption's BLEU-4 (corpus level), ROUGE-L and CIDEr-D scorers, vectorised, over per-sample stats.

The algorithms are pycocoevalcap 1.2's (bleu/, rouge/, cider/), which the tests use as the reference.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

# ==== coco-caption scorers (pycocoevalcap 1.2 bleu/, rouge/, cider/) =================================================
N_GRAM = 4
_BETA = 1.2  # Rouge: F-measure weight of recall
_SIGMA = 6.0  # Cider: length-penalty width
_TINY, _SMALL = 1e-15, 1e-9  # BleuScorer's guards against zero division


def _word_ids(words: Sequence[Sequence[str]]) -> tuple[np.ndarray, dict[str, int]]:
    """Every word of ``words`` (concatenated) as a dense integer id, and the vocabulary."""
    flat_words = [w for ws in words for w in ws]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(flat_words))}
    return np.fromiter(map(vocab.__getitem__, flat_words), np.int64, len(flat_words)), vocab


def _ngram_table(sentences: Sequence[str]) -> dict[str, Any]:
    """Every 1..4-gram of every sentence (words split on whitespace, as precook does), as dense ids.

    Returns the sentences' word counts and the sorted (sentence, n-gram) entries with their term frequencies; a
    k-gram's id is its (k-1)-gram's id and its last word, renumbered densely order by order.
    """
    words = [s.split() for s in sentences]
    lengths = np.fromiter(map(len, words), np.int64, len(words))
    flat, vocab = _word_ids(words)
    sent = np.repeat(np.arange(len(words)), lengths)
    remaining = lengths[sent] - (np.arange(len(flat)) - (np.cumsum(lengths) - lengths)[sent])
    entry_sent, entry_gram, gram_order = [sent], [flat], [np.zeros(len(vocab), np.int64)]
    prev, offset = flat, len(vocab)
    for k in range(2, N_GRAM + 1):
        at = np.flatnonzero(remaining >= k)
        uniq, inverse = np.unique(prev[at] * max(len(vocab), 1) + flat[at + k - 1], return_inverse=True)
        prev = np.zeros_like(flat)
        prev[at] = inverse
        entry_sent.append(sent[at])
        entry_gram.append(inverse + offset)
        gram_order.append(np.full(len(uniq), k - 1, np.int64))
        offset += len(uniq)
    n_grams = max(offset, 1)
    keys, tf = np.unique(np.concatenate(entry_sent) * n_grams + np.concatenate(entry_gram), return_counts=True)
    return {
        "lengths": lengths,
        "n_grams": n_grams,
        "keys": keys,  # sentence * n_grams + n-gram, sorted
        "sent": keys // n_grams,
        "gram": keys % n_grams,
        "order": np.concatenate(gram_order)[keys % n_grams],  # n - 1
        "tf": tf.astype(np.float64),
    }


def _pairs(references: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Number of references per item, the item of each (item, reference) pair, the references flattened."""
    n_refs = np.fromiter((len(r) for r in references), np.int64, len(references))
    return n_refs, np.repeat(np.arange(len(references)), n_refs), [r for refs in references for r in refs]


def bleu_counts(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> list[dict[str, Any]]:
    """BleuScorer.cook_test per item: candidate n-gram counts clipped by their maximum count in any reference,
    guesses, and the 'closest' reference length (ties go to the shorter reference)."""
    n_items = len(candidates)
    n_refs, pair_item, flat_refs = _pairs(references)
    table = _ngram_table([*candidates, *flat_refs])
    n_grams, sent, gram, tf = table["n_grams"], table["sent"], table["gram"], table["tf"]
    is_ref = sent >= n_items
    ref_key = pair_item[sent[is_ref] - n_items] * n_grams + gram[is_ref]
    order = np.argsort(ref_key, kind="stable")
    ref_key, ref_tf = ref_key[order], tf[is_ref][order]
    first = np.flatnonzero(np.concatenate(([True], ref_key[1:] != ref_key[:-1])))
    max_key, max_tf = ref_key[first], np.maximum.reduceat(ref_tf, first) if len(first) else ref_tf
    cand_key = sent[~is_ref] * n_grams + gram[~is_ref]
    at = np.minimum(np.searchsorted(max_key, cand_key), max(len(max_key) - 1, 0))
    clip = np.where(max_key[at] == cand_key, max_tf[at], 0.0) if len(max_key) else np.zeros(len(cand_key))
    correct = np.bincount(sent[~is_ref] * N_GRAM + table["order"][~is_ref], np.minimum(tf[~is_ref], clip),
                          n_items * N_GRAM).reshape(n_items, N_GRAM)  # fmt: skip
    testlen = table["lengths"][:n_items]
    reflen = table["lengths"][n_items:]
    closest = np.abs(reflen - testlen[pair_item]) * (reflen.max(initial=0) + 1) + reflen  # (distance, length)
    starts = np.cumsum(n_refs) - n_refs
    chosen = np.minimum.reduceat(closest, starts) % (reflen.max(initial=0) + 1)
    return [
        {
            "testlen": int(t),
            "reflen": int(r),
            "guess": [max(0, int(t) - k) for k in range(N_GRAM)],
            "correct": [int(c) for c in row],
        }
        for t, r, row in zip(testlen, chosen, correct, strict=True)
    ]


def corpus_bleu4(stats: Sequence[Mapping[str, Any]]) -> float:
    """BleuScorer.compute_score on summed counts: clipped precisions, geometric mean, corpus brevity penalty."""
    correct = np.sum([s["correct"] for s in stats], axis=0, dtype=np.float64)
    guess = np.sum([s["guess"] for s in stats], axis=0, dtype=np.float64)
    testlen = float(sum(s["testlen"] for s in stats))
    reflen = float(sum(s["reflen"] for s in stats))
    bleu = float(np.prod((correct + _TINY) / (guess + _SMALL))) ** (1.0 / N_GRAM)
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    return bleu * math.exp(1 - 1 / ratio) if ratio < 1 else bleu


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, bit-parallel (Allison-Dix / Hyyrö): one big-int step per token."""
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for token in b:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return len(a) - v.bit_count()


def rouge_l(candidate: str, references: Sequence[str]) -> float:
    """Rouge.calc_score: tokens split on single spaces, best precision and best recall over references, F(1.2)."""
    cand = candidate.split(" ")
    prec, rec = 0.0, 0.0
    for ref in references:
        tokens = ref.split(" ")
        lcs = _lcs(tokens, cand)
        prec, rec = max(prec, lcs / len(cand)), max(rec, lcs / len(tokens))
    if prec == 0 or rec == 0:
        return 0.0
    return (1 + _BETA**2) * prec * rec / (rec + _BETA**2 * prec)


def corpus_cider(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> float:
    """CiderScorer.compute_score (CIDEr-D), vectorised over every n-gram of the corpus.

    tf-idf n-gram vectors with document frequencies from *these* items' references (an item counts once per
    n-gram, whatever its number of references), the clipped cosine sum(min(h, r) * r) / (|h| |r|) per n, a
    Gaussian penalty on the difference of 'lengths' (counts2vec counts 2-grams: max(0, words - 1)), mean over n,
    mean over references, x10, mean over items.
    """
    n_items = len(candidates)
    n_refs, pair_item, flat_refs = _pairs(references)  # sentence n_items + p is reference pair p
    table = _ngram_table([*candidates, *flat_refs])
    lengths, n_grams, keys, tf = table["lengths"], table["n_grams"], table["keys"], table["tf"]
    e_sent, e_gram, e_order, n_sent = table["sent"], table["gram"], table["order"], len(table["lengths"])
    is_ref = e_sent >= n_items
    doc = np.sort(pair_item[e_sent[is_ref] - n_items] * n_grams + e_gram[is_ref])  # (item, n-gram), once each
    doc = doc[np.concatenate(([True], doc[1:] != doc[:-1]))] % n_grams
    df = np.bincount(doc, minlength=n_grams).astype(np.float64)
    vec = tf * (math.log(float(n_items)) - np.log(np.maximum(1.0, df)))[e_gram]  # ref_len - log(max(1, df))
    norm = np.sqrt(np.bincount(e_sent * N_GRAM + e_order, vec**2, n_sent * N_GRAM)).reshape(n_sent, N_GRAM)
    # every candidate entry meets the same n-gram in each reference of its item
    c_count = np.bincount(e_sent[~is_ref], minlength=n_items)
    c_start = np.cumsum(c_count) - c_count
    per_pair = c_count[pair_item]
    pick = np.repeat(c_start[pair_item] - (np.cumsum(per_pair) - per_pair), per_pair) + np.arange(per_pair.sum())
    pair = np.repeat(np.arange(len(pair_item)), per_pair)
    wanted = (pair + n_items) * n_grams + e_gram[pick]
    at = np.minimum(np.searchsorted(keys, wanted), max(len(keys) - 1, 0))
    ref_val = np.where(keys[at] == wanted, vec[at], 0.0) if len(keys) else np.zeros(len(wanted))
    n_pairs = len(pair_item)
    val = np.bincount(pair * N_GRAM + e_order[pick], np.minimum(vec[pick], ref_val) * ref_val, n_pairs * N_GRAM)
    val = val.reshape(n_pairs, N_GRAM)
    c_norm, r_norm = norm[pair_item], norm[n_items:]
    val = np.divide(val, c_norm * r_norm, out=val, where=(c_norm != 0) & (r_norm != 0))
    bigrams = np.maximum(lengths - 1, 0).astype(np.float64)
    delta = bigrams[pair_item] - bigrams[n_items:]
    val *= np.exp(-(delta**2) / (2 * _SIGMA**2))[:, None]
    per_item = np.bincount(pair_item, val.mean(axis=1), n_items) / n_refs
    return float(per_item.mean() * 10.0)
