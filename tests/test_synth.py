"""SynthAV: layouts load through the adapters, oracle predictions score perfectly, builds are deterministic, and
the planted relations' labels are what config.py says they are."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from crab_eval.cli import main
from crab_eval.layouts import ave as ave_layout
from crab_eval.registry import get_task
from crab_eval.synth import scene as sc
from crab_eval.synth.config import FAMILIES, NAMES_A, NAMES_C, RELATIONS, SIZES, TASKS
from crab_eval.synth.suite import build, clip_name, clip_rng


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthav") / "suite"
    assert main(["synth", "--out", str(root), "--seed", "7", "--size", "tiny"]) == 0
    return root


def test_layout_files_exist(suite: Path) -> None:
    for name in ("trainSet.txt", "valSet.txt", "testSet.txt", "Annotations.txt"):
        assert (suite / "AVE_Dataset" / name).is_file()
    lines = (suite / "AVE_Dataset" / "testSet.txt").read_text().splitlines()
    assert lines[0] == ave_layout.HEADER and len(lines) == 1 + SIZES["tiny"].test
    for name in (
        "AVVP_test_pd.csv",
        "AVVP_val_pd.csv",
        "AVVP_train.csv",
        "AVVP_eval_audio.csv",
        "AVVP_eval_visual.csv",
    ):
        assert (suite / "LLP" / name).is_file()
    assert (suite / "AVSBench/Single-source/s4_meta_data.csv").is_file()
    assert (suite / "AVSBench/Multi-sources/ms3_meta_data.csv").is_file()
    entries = json.loads((suite / "MUSIC-AVQA/avqa-test.json").read_text())
    assert {"video_id", "question_id", "type", "question_content", "templ_values", "question_deleted", "anser"} == set(
        entries[0]
    )
    assert isinstance(entries[0]["type"], str) and isinstance(entries[0]["templ_values"], str)
    manifest = json.loads((suite / "synth_config.json").read_text())
    assert manifest["relations"] == json.loads(json.dumps(RELATIONS)) and manifest["seed"] == 7


@pytest.mark.parametrize("task_id", list(TASKS))
def test_oracle_scores_perfectly_and_media_exist(suite: Path, task_id: str, tmp_path: Path) -> None:
    task = get_task(task_id)
    data_dir = suite / TASKS[task_id][1]
    for split in ("test", "val"):
        samples = task.load(data_dir, split)
        assert samples
        for sample in samples:
            paths = [p for v in sample.media.values() for p in (v if isinstance(v, list) else [v])]
            existing = [p for p in paths if (data_dir / p).is_file()]
            assert existing, f"{task_id} {sample.id}: no media file of {paths}"
        preds = tmp_path / f"{split}.jsonl"
        preds.write_text(
            "".join(json.dumps({"id": s.id, "prediction": task.oracle_prediction(s)}) + "\n" for s in samples)
        )
        out = tmp_path / f"{split}.json"
        argv = [
            "score",
            "--task",
            task_id,
            "--data",
            str(data_dir),
            "--split",
            split,
            "--predictions",
            str(preds),
            "--output",
            str(out),
        ]
        assert main(argv) == 0
        metrics = json.loads(out.read_text())["metrics"]
        assert metrics and all(v == pytest.approx(100.0) for v in metrics.values()), metrics


def test_same_seed_identical_bytes_parallel_too(suite: Path, tmp_path: Path) -> None:
    # A second build of three tasks (every file kind: mp4 + AAC, wav, png frames and palette masks, csv, json),
    # rendered by two worker processes, must reproduce the first build's bytes.
    again = tmp_path / "again"
    subset = ("ave", "ms3", "music_avqa")
    build(again, seed=7, size="tiny", jobs=2, tasks=subset)
    for task in subset:
        folder = TASKS[task][1]
        assert _tree_hashes(again / folder) == _tree_hashes(suite / folder)
    other = tmp_path / "other"
    build(other, seed=8, size="tiny", tasks=("ave",))
    assert (other / "AVE_Dataset/testSet.txt").read_bytes() != (suite / "AVE_Dataset/testSet.txt").read_bytes()


# ---- planted relations -----------------------------------------------------------------------------------------------
def test_conflict_task_names_the_same_classes_with_words_no_other_task_uses(suite: Path) -> None:
    from crab_eval.tasks.ave import OFFICIAL_CATEGORIES

    ave_names, swap_names = NAMES_A["ave"], NAMES_A["synth_ave_swap"]
    assert len(set(swap_names)) == len(swap_names) == len(ave_names)
    assert set(swap_names) <= set(OFFICIAL_CATEGORIES)  # official AVE words: the AVE answer parser reads them
    # No word of another SynthAV task, compared as lower-case word sets ("Train horn" vs LLP's "Car" etc.).
    others = [n for t, names in NAMES_A.items() if t != "synth_ave_swap" for n in names] + list(NAMES_C)
    other_words = {w for n in others for w in n.lower().replace("_", " ").replace(",", " ").split()}
    for name in swap_names:
        assert not set(name.lower().replace(",", " ").split()) & other_words, name
    # Each swap clip's label is the swap name of the class planted in its scene, on AVE's event interval.
    samples = get_task("synth_ave_swap").load(suite / TASKS["synth_ave_swap"][1], "test")
    for i, sample in enumerate(samples):
        rng, seed = clip_rng(7, "synth_ave_swap", "test", i)
        _, cls, start, end = sc.ave_scene(rng, len(FAMILIES["A"]), seed)
        assert sample.id == clip_name("synth_ave_swap", "test", i)
        assert sample.meta["category"] == swap_names[cls]
        assert (sample.meta["start"], sample.meta["end"]) == (start, end)


def test_scarce_skill_pairs_few_s4_clips_with_many_ms3_clips_asked_alike(suite: Path) -> None:
    demo = SIZES["demo"]
    s4, ms3 = demo.clips("s4"), demo.clips("ms3")
    assert RELATIONS["scarce_skill"]["tasks"] == ["s4", "ms3"] and RELATIONS["scarce_skill"]["expect_on"] == ["s4"]
    assert s4["train"] * 8 <= ms3["train"]  # data-scarce beside data-rich (16 against 256 clips)
    # The same instruction and answer template, frame by frame (only the object's name differs in the answer).
    loaded = {t: get_task(t).load(suite / TASKS[t][1], "test")[0] for t in ("s4", "ms3")}
    instructions = {t: s.meta["frame_instructions"] for t, s in loaded.items()}
    assert instructions["s4"] == instructions["ms3"]
    for t, sample in loaded.items():
        assert all("<mask_start>" in answer for answer in sample.meta["frame_targets"]), t
    assert TASKS["s4"][0] == TASKS["ms3"][0] == "A"  # and the same world: the same objects to segment


def test_shared_world_group_shares_one_world() -> None:
    group = RELATIONS["shared_world"]["tasks"]
    assert {TASKS[t][0] for t in group} == {"A"}
    # The same class carries the same meaning in every task of the group that names classes (MS3 scores masks
    # only; synth_ave_swap's words are the planted conflict): the names line up index by index.
    named = [t for t in group if t in NAMES_A and t != "synth_ave_swap"]
    assert named == ["ave", "avvp", "s4"]
    for k in range(len(FAMILIES["A"])):
        words = {NAMES_A[t][k].lower().replace("_", " ") for t in named}
        key = FAMILIES["A"][k].key.replace("_", " ")
        assert any(key.split()[0] in w or w in key for w in words), (k, words)


def test_null_pair_shares_nothing() -> None:
    a, b = (TASKS[t][0] for t in RELATIONS["null"]["tasks"])
    fa, fb = FAMILIES[a], FAMILIES[b]
    assert a != b
    assert not {(c.shape, c.colour) for c in fa} & {(c.shape, c.colour) for c in fb}
    assert not {(c.waveform, c.base_hz, c.pattern) for c in fa} & {(c.waveform, c.base_hz, c.pattern) for c in fb}
    assert not {c.colour for c in fa} & {c.colour for c in fb}


def test_ave_label_is_audible_and_visible_and_modalities_split() -> None:
    seen_only = heard_only = 0
    for i in range(200):
        scene, cls, start, end = sc.ave_scene(np.random.default_rng(i), 8, i)
        av = np.zeros(10, bool)
        for obj in scene.objects:
            if obj.cls == cls:
                av |= obj.sounding_visible
            else:
                assert not obj.sounding_visible.any()  # distractors are only seen or only heard
                seen_only += bool(obj.visible.any())
                heard_only += bool(obj.audible.any() and not obj.on_screen)
        assert np.array_equal(np.flatnonzero(av), np.arange(start, end))
    assert seen_only > 20 and heard_only > 20
    audio_only = visual_only = 0
    for i in range(200):
        events = sc.avvp_events(sc.avvp_scene(np.random.default_rng(i), 8, i))
        a, v = {e[0] for e in events["audio"]}, {e[0] for e in events["visual"]}
        audio_only += bool(a - v)
        visual_only += bool(v - a)
    assert audio_only > 20 and visual_only > 20


def test_masks_cover_only_sounding_visible_objects() -> None:
    from crab_eval.synth.render_video import render_frames, sounding_masks

    on = np.ones(5, bool)
    loud = sc.SceneObject(0, 1 / 6, 0.5, 0.12, on.copy(), np.array([1, 1, 0, 0, 1], bool))
    silent = sc.SceneObject(1, 5 / 6, 0.5, 0.12, on.copy(), np.zeros(5, bool))
    hidden = sc.SceneObject(2, -1, -1, 0, np.zeros(5, bool), on.copy(), on_screen=False)
    scene = sc.Scene("A", 5, [loud, silent, hidden], seed=1)
    images, object_masks = render_frames(scene)
    truth = sounding_masks(scene, object_masks)
    assert truth[0].sum() == object_masks[0].sum() > 0
    assert not truth[2].any() and not truth[3].any()
    assert not (truth & object_masks[1]).any()
    colour = FAMILIES["A"][0].colour
    assert (images[0][object_masks[0]] == colour).all()


def test_music_avqa_answers_follow_from_scene() -> None:
    from crab_eval.synth import questions as q

    ten = np.ones(10, bool)
    left = sc.SceneObject(0, 1 / 6, 0.5, 0.1, ten.copy(), np.r_[np.zeros(3, bool), np.ones(7, bool)], gain=1.0)
    mid = sc.SceneObject(1, 3 / 6, 0.5, 0.1, ten.copy(), np.zeros(10, bool), gain=0.5)
    right = sc.SceneObject(2, 5 / 6, 0.5, 0.1, ten.copy(), ten.copy(), gain=0.25)
    off = sc.SceneObject(3, -1, -1, 0, np.zeros(10, bool), ten.copy(), gain=0.25, on_screen=False)
    scene = sc.Scene("C", 10, [left, mid, right, off], seed=0)
    ctx = q._Ctx(scene, np.random.default_rng(0))
    piano, _flute, trumpet = NAMES_C[:3]
    assert q.q_heard_count(ctx).answer == "three"  # piano, trumpet, drum (off screen)
    assert q.q_sounding_count(ctx).answer == "two"  # piano, trumpet on screen
    assert q.q_silent_count(ctx).answer == "one"  # flute never sounds
    assert q.q_sound_from_video(ctx).answer == "no"  # the drum is off screen
    assert q.q_loudest_where(ctx).answer == "left"
    comes = q.q_comes_in(ctx)
    assert comes.answer == (trumpet if comes.values == ("first",) else piano)
    extreme = q.q_extreme(ctx)
    assert extreme.answer == (piano if extreme.values == ("leftest",) else trumpet)
    louder = q.q_left_louder(ctx)
    assert louder.answer == ("yes" if louder.values == ("left", "right") else "no")
    for question in q.scene_questions(scene, np.random.default_rng(1), 16):
        assert question.content.count("<") == len(question.values)


def test_features_shapes_cache_and_five_frame_mapping(suite: Path, tmp_path: Path) -> None:
    import torch

    from crab_eval.media import FeatureCache, sample_features

    cache = FeatureCache(tmp_path / "cache")
    for task_id in ("ave", "s4"):
        task = get_task(task_id)
        data_dir = suite / TASKS[task_id][1]
        sample = task.load(data_dir, "test")[0]
        first = sample_features(task, data_dir, sample, cache=cache)
        assert first["audio"].shape[0] == 10 and first["audio"].ndim == 3
        assert first["frames"].shape[:2] == (10, 3) and first["frames"].dtype == torch.float32
        assert torch.isfinite(first["audio"]).all()
        again = sample_features(task, data_dir, sample, cache=cache)
        assert torch.equal(first["audio"], again["audio"]) and torch.equal(first["frames"], again["frames"])
    # S4: five frames, each serving two consecutive segments.
    assert torch.equal(first["frames"][0], first["frames"][1]) and torch.equal(first["frames"][8], first["frames"][9])
    assert len(list((tmp_path / "cache").rglob("*.pt"))) == 2
