"""avcap: PTB tokenisation, coco-caption BLEU-4 / ROUGE-L / CIDEr-D, loader, parser, end to end.

Expected values come from (a) hand-worked examples in the comments, (b) pycocoevalcap 1.2's own Bleu, Rouge and
Cider scorers (the reference library) called directly on the same tokenised captions, and (c) for the tokeniser,
outputs worked from PTBLexer.flex (CoreNLP 3.4.1) as coco-caption runs it — each pair below was also confirmed by
running coco-caption's Java PTBTokenizer once; ``test_tokenizer_matches_java`` repeats that where Java exists.
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge, my_lcs

from crab_eval.cli import main as cli_main
from crab_eval.errors import AnnotationError, PredictionError, PredictionFileError
from crab_eval.layouts.avcap import make_entry, split_path, write_split
from crab_eval.metrics import captions as caption_metrics
from crab_eval.metrics import ptb_tokenizer
from crab_eval.registry import get_task
from crab_eval.scoring import score
from crab_eval.tasks import avcap
from crab_eval.tasks.base import CRAB_PREFIX, Split

# (caption, coco-caption's tokenised caption): lower case; "." "," "?" "!" ";" ":" "..." "--" quotes dropped;
# brackets become -lrb- ... and SURVIVE (lower-cased after the lexer, the list holds "-LRB-"); clitics split
# ("does n't", "ca n't", "can not", "gon na", "'s"); abbreviations and acronyms keep their period ("mr.", "u.s.",
# "e.g.", "no." before a number) except a one-letter acronym before a sentence start ("letter A. The" -> "a");
# "!!" and "?!" are not single marks and stay; "$5" -> "$ 5", "€" -> "$", "£" -> "#", "¼" -> "1/4"; numbers keep
# "." "," ":"; "3 1/2" and "12 345 6789" are single tokens holding a no-break space.
PTB_CASES = [
    ("A man (in a red shirt) plays the guitar.", "a man -lrb- in a red shirt -rrb- plays the guitar"),
    ('He said "hello" and left...', "he said hello and left"),
    ("She doesn't like it, can't you see? I cannot.", "she does n't like it ca n't you see i can not"),
    ("Mr. Smith and Dr. Brown met at St. Louis, etc.", "mr. smith and dr. brown met at st. louis etc."),
    ("The letter A. The crowd cheers!", "the letter a the crowd cheers"),
    ("It's 3.5 meters long; 1,000 people came at 10:30.", "it 's 3.5 meters long 1,000 people came at 10:30"),
    ("The U.S. team won. Then a dog barked.", "the u.s. team won then a dog barked"),
    ("He's gonna sing -- and she's wanna dance.", "he 's gon na sing and she 's wan na dance"),
    (
        "A man's voice, the dogs' barking and the children's laughter.",
        "a man 's voice the dogs barking and the children 's laughter",
    ),
    ("Music plays!! What?! Wow...", "music plays !! what ?! wow"),
    ("Score: 3-2, e.g. a close game, i.e. tense.", "score 3-2 e.g. a close game i.e. tense"),
    (
        "A black/white cat and/or a dog {sleeping} [quietly].",
        "a black/white cat and/or a dog -lcb- sleeping -rcb- -lsb- quietly -rsb-",
    ),
    ("The price is $5 or €10 or £3, about 50% off.", "the price is $ 5 or $ 10 or # 3 about 50 % off"),
    (
        "A woman says ‘good morning’ and “thank you” — then leaves.",
        "a woman says good morning and thank you then leaves",
    ),
    ("Rock'n'roll music from the '90s plays at 5 o'clock.", "rock 'n' roll music from the '90s plays at 5 o'clock"),
    ("It is 1/2 full, ¼ empty, and 3 1/2 cups.", "it is 1/2 full 1/4 empty and 3\xa01/2 cups"),
    (
        "An e-mail from john@example.com and www.example.com/page appears.",
        "an e-mail from john@example.com and www.example.com/page appears",
    ),
    (
        "A man wearing a T-shirt, a short-sleeved shirt,and jeans.",
        "a man wearing a t-shirt a short-sleeved shirt and jeans",
    ),
    ("The camera zooms in:a man smiles :) and waves.", "the camera zooms in a man smiles :-rrb- and waves"),
    ('Two men play ping-pong; one says "Go!"', "two men play ping-pong one says go"),
    ('A man says:"Let\'s go," and they run.', "a man says let 's go and they run"),
    ("People cheer. . . and clap.", "people cheer and clap"),
    ("A sign reads NO. 5 and No. 7 Street.", "a sign reads no. 5 and no. 7 street"),
    ("There are 12 345 6789 numbers.", "there are 12\xa0345\xa06789 numbers"),
    ("The AT&T logo and R&B music, rock & roll.", "the at&t logo and r&b music rock & roll"),
    (
        "I'm sure you're right, we'll see, they'd know, I've done it.",
        "i 'm sure you 're right we 'll see they 'd know i 've done it",
    ),
    ("The car's engine roared;the crowd's cheers.", "the car 's engine roared the crowd 's cheers"),
    ("The band plays — loud!", "the band plays loud"),
    ('Someone says "it\'s 45 degrees".', "someone says it 's 45 degrees"),
    ("A YOU'RE sign and JOE'S diner.", "a you 're sign and joe 's diner"),
]
# VALOR-32K captions as released (desc_test.json), for the fast path.
PTB_VALOR = [
    (
        "In one room, a yellow bird leaped over the fence. The sound of his mouth ringing.",
        "in one room a yellow bird leaped over the fence the sound of his mouth ringing",
    ),
    (
        "The machine-like sound of a click-cl Then a computer screen appeared and a man was talking.",
        "the machine-like sound of a click-cl then a computer screen appeared and a man was talking",
    ),
    (
        "Music was heard, and the letter e on the brown background became the letter d.",
        "music was heard and the letter e on the brown background became the letter d",
    ),
]


@pytest.fixture(scope="module")
def task():
    return get_task("avcap")


def coco(refs: list[list[str]], cands: list[str]) -> dict[str, float]:
    """pycocoevalcap's scorers on tokenised captions, x100 (COCOEvalCap as VALOR's compute_metric_cap runs it)."""
    gts = {i: list(r) for i, r in enumerate(refs)}
    res = {i: [c] for i, c in enumerate(cands)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, _ = Rouge().compute_score(gts, res)
    cider, _ = Cider().compute_score(gts, res)
    return {"bleu4": 100 * bleu[3], "rouge_l": 100 * float(rouge), "cider": 100 * float(cider)}


def stats_for(task, refs: list[list[str]], cands: list[str]) -> list[dict]:
    samples = [avcap.Sample(id=str(i), instruction="", target=tuple(r), group=str(i)) for i, r in enumerate(refs)]
    # candidates here are already tokenised; tokenising a tokenised caption changes nothing
    return task.score_samples(samples, cands)


# ---- tokeniser ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("caption", "expected"), PTB_CASES + PTB_VALOR)
def test_tokenizer_reproduces_ptb(caption, expected):
    assert ptb_tokenizer.tokenize_caption(caption) == expected


def test_tokenizer_paths_agree():
    # the fast paths and the full longest-match lexer give the same tokens
    for caption, expected in PTB_CASES + PTB_VALOR:
        slow = " ".join(t for t in ptb_tokenizer.ptb_tokens(caption) if t not in ptb_tokenizer.PUNCTUATIONS)
        assert slow == expected
    assert ptb_tokenizer.tokenize_caption("") == "" and ptb_tokenizer.tokenize_caption(" ... ") == ""
    assert ptb_tokenizer.tokenize_caption("a\nb\rc\u2028d") == "a b c d"  # line breaks are spaces


@pytest.mark.skipif(shutil.which("java") is None, reason="needs Java for coco-caption's PTBTokenizer")
def test_tokenizer_matches_java():
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    # coco-caption joins the captions into one file, so a caption's neighbour can matter: each case is followed
    # by a caption starting with "A", as ptb_tokens assumes.
    captions = [c for pair in PTB_CASES + PTB_VALOR for c in (pair[0], "A filler.")]
    out = PTBTokenizer().tokenize({i: [{"caption": c}] for i, c in enumerate(captions)})
    for i in range(0, len(captions), 2):
        assert ptb_tokenizer.tokenize_caption(captions[i]) == out[i][0], captions[i]


# ---- BLEU, ROUGE-L, CIDEr worked by hand ------------------------------------------------------------------------
REF1, CAND1 = "a cat sat on the mat", "a cat sat on a mat"
REFS2, CAND2 = ["a dog runs", "the dog is running fast"], "a dog is running"


def test_bleu_hand_worked(task):
    # item 1: clipped matches 1-4 grams 5/6, 3/5, 2/4, 1/3 ("a" twice, once in the reference); equal lengths
    one = task.aggregate(stats_for(task, [[REF1]], [CAND1]))
    assert one["bleu4"] == pytest.approx(100 * (5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, rel=1e-8)
    # item 2: references of 3 and 5 words are both 1 away from 4: 'closest' takes the shorter (3), so no
    # brevity penalty; matches 4/4, 3/3, 1/2 ("dog is running") and 0/1 -> smoothed to 1e-15 / (1 + 1e-9)
    two = stats_for(task, [REFS2], [CAND2])[0]
    assert (two["testlen"], two["reflen"], two["guess"], two["correct"]) == (4, 3, [4, 3, 2, 1], [4, 3, 1, 0])
    alone = task.aggregate([two])["bleu4"]
    assert alone == pytest.approx(100 * (1 * 1 * 0.5 * 1e-15 / (1 + 1e-9)) ** 0.25, rel=1e-6)
    assert 0 < alone < 0.02  # the smoothing leaves a small non-zero BLEU-4
    # corpus level: counts are pooled, not averaged: (9/10 * 6/8 * 3/6 * 1/4)^(1/4), testlen 10 > reflen 9
    both = task.aggregate(stats_for(task, [[REF1], REFS2], [CAND1, CAND2]))
    assert both["bleu4"] == pytest.approx(100 * (9 / 10 * 6 / 8 * 3 / 6 * 1 / 4) ** 0.25, rel=1e-8)
    # brevity penalty: a 3-word candidate against 6 words -> exp(1 - 6/3) on (3/3 * 2/2 * 1/1 * 1e-15)^(1/4)
    short = task.aggregate(stats_for(task, [[REF1]], ["a cat sat"]))["bleu4"]
    assert short == pytest.approx(100 * math.exp(1 - 2) * (1e-15 / 1e-9) ** 0.25, rel=1e-5)


def test_rouge_hand_worked(task):
    # LCS("a cat sat on the mat", "a cat sat on a mat") = 5: P = R = 5/6, F = 5/6 whatever beta
    assert caption_metrics.rouge_l(CAND1, [REF1]) == pytest.approx(5 / 6, rel=1e-12)
    # best precision (3/4, second reference) and best recall (2/3, first one) come from different references
    p, r = 3 / 4, 2 / 3
    assert caption_metrics.rouge_l(CAND2, REFS2) == pytest.approx(2.44 * p * r / (r + 1.44 * p), rel=1e-12)
    assert caption_metrics.rouge_l("", [REF1]) == 0.0
    rows = stats_for(task, [[REF1], REFS2], [CAND1, CAND2])
    assert task.aggregate(rows)["rouge_l"] == pytest.approx(100 * (5 / 6 + 2.44 * p * r / (r + 1.44 * p)) / 2)


def test_lcs_matches_coco():
    rng = random.Random(3)
    for _ in range(300):
        a = [rng.choice("abcde") for _ in range(rng.randint(1, 25))]
        b = [rng.choice("abcdef") for _ in range(rng.randint(1, 25))]
        assert caption_metrics._lcs(a, b) == my_lcs(a, b)


def test_cider_hand_worked(task):
    # N = 2 items, refs "a b" and "a c": idf weight log(2) - log(df) is 0 for "a" (both items), log 2 for the
    # rest. A perfect caption scores cosine 1 for n = 1, 2 and 0 for n = 3, 4 (no such n-grams): 10 * 2/4 = 5.
    refs = [["a b"], ["a c"]]
    assert task.aggregate(stats_for(task, refs, ["a b", "a c"]))["cider"] == pytest.approx(500.0, rel=1e-12)
    # "b a": unigrams still match (1), the bigram "b a" does not (0): 10 * 1/4 = 2.5; mean (2.5 + 5) / 2
    assert task.aggregate(stats_for(task, refs, ["b a", "a c"]))["cider"] == pytest.approx(375.0, rel=1e-12)
    # a single item: log(1) - log(1) = 0 weights everywhere, so even a perfect caption scores 0
    assert task.aggregate(stats_for(task, [["a b"]], ["a b"]))["cider"] == 0.0


# ---- against pycocoevalcap on larger random sets --------------------------------------------------------------
WORDS = ["a", "man", "woman", "dog", "plays", "the", "guitar", "in", "room", "loud", "music", "sings", "while"]


def random_set(seed: int, n: int) -> tuple[list[list[str]], list[str]]:
    rng = random.Random(seed)
    refs, cands = [], []
    for _ in range(n):
        k = rng.choice([1, 1, 1, 2, 3])
        refs.append([" ".join(rng.choices(WORDS, k=rng.randint(1, 12))) for _ in range(k)])
        draw = rng.random()
        if draw < 0.1:
            cands.append("")  # empty prediction
        elif draw < 0.4:
            cands.append(refs[-1][0])
        else:
            cands.append(" ".join(rng.choices(WORDS, k=rng.randint(1, 14))))
    return refs, cands


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_aggregate_equals_pycocoevalcap(task, seed):
    refs, cands = random_set(seed, 150)
    rows = stats_for(task, refs, cands)
    assert task.aggregate(rows) == pytest.approx(coco(refs, cands), rel=1e-9, abs=1e-9)
    # any resample (duplicates included) is scored as coco-caption scores that multiset of items: CIDEr's
    # document frequencies and BLEU's pooled counts come from the resample itself
    rng = random.Random(seed)
    pick = sorted(rng.choices(range(len(rows)), k=len(rows)))
    expected = coco([refs[i] for i in pick], [cands[i] for i in pick])
    assert task.aggregate([rows[i] for i in pick]) == pytest.approx(expected, rel=1e-9, abs=1e-9)
    sub = pick[:37]
    expected = coco([refs[i] for i in sub], [cands[i] for i in sub])
    assert task.aggregate([rows[i] for i in sub]) == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_stats_are_json(task):
    rows = stats_for(task, *random_set(4, 20))
    again = json.loads(json.dumps(rows))
    assert task.aggregate(again) == task.aggregate(rows)
    assert task.aggregate([]) == {}


# ---- declaration, loader, layout --------------------------------------------------------------------------------
def test_declaration(task):
    assert [m.name for m in task.metrics] == ["bleu4", "rouge_l", "cider"]
    assert task.main_metric == "cider" and task.metric("cider").scale == "0-1000"
    assert task.splits == ("test", "val", "train")


def test_layout_is_the_release_format(tmp_path):
    entries = [make_entry("CEfOX4fYlsY_20.000_30.000", "In one room, a bird leaped.")]
    path = write_split(tmp_path, "test", entries)
    assert path == split_path(tmp_path, "test") and path.name == "desc_test.json"
    assert path.read_text() == '[{"video_id": "CEfOX4fYlsY_20.000_30.000", "desc": "In one room, a bird leaped."}]'


def test_load(tmp_path, task):
    write_split(tmp_path, "test", [
        make_entry("v1_0.000_10.000", "A man plays the guitar."),
        make_entry("v2_5.000_15.000", "Two dogs bark, and a car passes."),
        make_entry("v1_0.000_10.000", "A man is playing a guitar loudly."),  # same video: a second reference
    ])  # fmt: skip
    samples = task.load(tmp_path, "test")
    assert [s.id for s in samples] == ["v1_0.000_10.000", "v2_5.000_15.000"]
    first = samples[0]
    assert first.target == ("a man plays the guitar", "a man is playing a guitar loudly")
    assert first.instruction == "Please describe this video and audio."
    assert task.prompt(first) == CRAB_PREFIX + "Please describe this video and audio."
    assert first.media == {"video": "video_data/v1_0.000_10.000.mp4", "audio": "audio_data/v1_0.000_10.000.mp3"}
    assert task.target_text(first) == "A man plays the guitar."
    assert task.annotation_files(tmp_path, "val") == [tmp_path / "desc_val.json"]


@pytest.mark.parametrize(
    ("content", "message", "line"),
    [
        ("[", "malformed JSON", 1),
        ('{"video_id": "a", "desc": "b"}', "expected a JSON list", 1),
        ('[{"video_id": "a", "desc": "b"},\n 7]', "entry 1: must be an object", 2),
        ('[{"video_id": "a", "desc": "b"},\n\n {"desc": "c"}]', "entry 1: 'video_id' must be a non-empty string", 3),
        ('[{"video_id": " ", "desc": "b"}]', "'video_id' must be a non-empty string", 1),
        ('[{"video_id": "a", "desc": 3}]', "entry 0: 'desc' must be a string", 1),
        ('[{"video_id": "a", "desc": " ... "}]', "has no words", 1),
    ],
)
def test_load_errors(tmp_path, task, content, message, line):
    (tmp_path / "desc_test.json").write_text(content, encoding="utf-8")
    with pytest.raises(AnnotationError) as err:
        task.load(tmp_path, "test")
    assert message in str(err.value) and err.value.line == line
    assert err.value.path == str(tmp_path / "desc_test.json")


def test_missing_file(tmp_path, task):
    with pytest.raises(AnnotationError, match="not found"):
        task.load(tmp_path, "val")


# ---- text and structured predictions ---------------------------------------------------------------------------
def test_parse(task):
    split = Split("avcap", "test", Path("."), ())  # the caption parser reads no annotation file
    assert task.parse("  A man sings.\n", split) == {"caption": "A man sings."}
    assert task.parse("<s> A man sings.</s>", split) == {"caption": "A man sings."}  # Crab keeps special tokens
    assert all(task.parse(text, split) is None for text in ("", "  \n ", "</s>"))


def test_check_prediction(task, tmp_path):
    sample = avcap.Sample(id="x", instruction="", target=("a b",), group="x")
    split = Split("avcap", "test", tmp_path, (sample,))
    assert task.check_prediction({"caption": "A dog."}, sample, split, tmp_path) == "A dog."
    assert task.check_prediction({"caption": ""}, sample, split, tmp_path) == ""  # empty is allowed, scores empty
    for bad, message in [
        ("A dog.", "must be an object"),
        ({"text": "A dog."}, "exactly the key 'caption'"),
        ({"caption": "a", "score": 1}, "exactly the key 'caption'"),
        ({"caption": ["a", "dog"]}, "'caption' must be a string"),
        ({"caption": None}, "'caption' must be a string"),
    ]:
        with pytest.raises(PredictionError, match=message):
            task.check_prediction(bad, sample, split, tmp_path)


# ---- end to end -----------------------------------------------------------------------------------------------
CAPTIONS = {
    "v1_0.000_10.000": "A man plays the guitar in a room.",
    "v2_0.000_10.000": "Two dogs bark while a car passes by.",
    "v3_0.000_10.000": "A woman sings on the stage, and the crowd cheers.",
    "v4_0.000_10.000": "Rain falls on the roof of the house.",
}
TOKENISED = {
    "v1_0.000_10.000": "a man plays the guitar in a room",
    "v2_0.000_10.000": "two dogs bark while a car passes by",
    "v3_0.000_10.000": "a woman sings on the stage and the crowd cheers",
    "v4_0.000_10.000": "rain falls on the roof of the house",
}


def build(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "data"
    write_split(data, "test", [make_entry(k, v) for k, v in CAPTIONS.items()])
    rows = [
        {"id": "v1_0.000_10.000", "prediction": {"caption": "A man is playing a guitar."}},
        {"id": "v2_0.000_10.000", "text": "Dogs bark and a car passes.</s>"},
        {"id": "v3_0.000_10.000", "text": "   "},  # unparsed -> empty caption
    ]  # v4 missing -> empty caption
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return data, preds


def test_score_end_to_end(tmp_path):
    data, preds = build(tmp_path)
    result = score("avcap", data, "test", preds)
    refs = [[TOKENISED[k]] for k in CAPTIONS]
    cands = ["a man is playing a guitar", "dogs bark and a car passes", "", ""]
    assert result.metrics == pytest.approx(coco(refs, cands), rel=1e-9)
    assert (result.n_samples, result.n_missing, result.n_unparsed) == (4, 1, 1)
    assert [row["status"] for row in result.samples] == ["ok", "ok", "unparsed", "missing"]
    assert result.samples[2]["rouge_l"] == 0.0 and result.samples[3]["candidate"] == ""


def test_oracle_scores_like_coco_on_references(tmp_path, task):
    data, _ = build(tmp_path)
    samples = task.load(data, "test")
    preds = tmp_path / "oracle.jsonl"
    preds.write_text("".join(json.dumps({"id": s.id, "text": task.target_text(s)}) + "\n" for s in samples))
    result = score("avcap", data, "test", preds)
    refs = [[TOKENISED[k]] for k in CAPTIONS]
    assert result.metrics["bleu4"] == pytest.approx(100.0) and result.metrics["rouge_l"] == pytest.approx(100.0)
    assert result.metrics == pytest.approx(coco(refs, [r[0] for r in refs]), rel=1e-9)


def test_cli(tmp_path, capsys):
    data, preds = build(tmp_path)
    out = tmp_path / "result.json"
    argv = ["score", "--task", "avcap", "--data", str(data), "--predictions", str(preds), "--output", str(out)]
    assert cli_main(argv) == 0
    saved = json.loads(out.read_text())
    assert set(saved["metrics"]) == {"bleu4", "rouge_l", "cider"}
    preds.write_text(json.dumps({"id": "v1_0.000_10.000", "prediction": {"caption": 5}}) + "\n")
    out2 = tmp_path / "bad.json"
    assert cli_main([*argv[:-1], str(out2)]) != 0
    assert "preds.jsonl:1" in capsys.readouterr().err and not out2.exists()
    with pytest.raises(PredictionFileError, match="'caption' must be a string"):
        score("avcap", data, "test", preds)
