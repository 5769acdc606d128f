"""Every dataset reader on a fixture tree that mirrors the real layout and field names (tiny generated
videos), quirks included; bad rows are counted, not fatal (unless strict); splits never cross a group."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dfdetect import datasets
from dfdetect.cli import main
from dfdetect.datasets import DatasetError, assign_splits, detect, inspect, read, split_leaks
from dfdetect.media import write_video
from dfdetect.records import UNKNOWN


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("tiny") / "tiny.mp4"
    write_video(p, [np.full((32, 32, 3), 100, np.uint8)] * 3, fps=3)
    return p


def put(tiny: Path, root: Path, *rels: str) -> None:
    for rel in rels:
        dst = root / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tiny, dst)


def by_name(records):
    return {Path(r.path).name: r for r in records}


def test_fakeavceleb_ten_values_under_nine_names(tiny, tmp_path):
    root = tmp_path / "FakeAVCeleb"
    rows = [
        ("id00076", "-", "-", "real", "A", "RealVideo-RealAudio", "African", "men", "00109.mp4"),
        ("id00076", "-", "-", "rtvc", "B", "RealVideo-FakeAudio", "African", "men", "00109_fake.mp4"),
        ("id00076", "id00166", "-", "faceswap", "C", "FakeVideo-RealAudio", "African", "men", "00109_2.mp4"),
        ("id00166", "id00076", "-", "faceswap-wav2lip", "D", "FakeVideo-FakeAudio", "African", "men", "00001.mp4"),
        ("id00166", "-", "-", "real", "X", "RealVideo-RealAudio", "African", "men", "00002.mp4"),  # bad category
        ("id00200", "-", "-", "real", "A", "RealVideo-RealAudio", "Asian", "women", "00003.mp4"),  # missing file
    ]
    lines = ["source,target1,target2,method,category,type,race,gender,path"]
    for r in rows:
        folder = f"FakeAVCeleb/{r[5]}/{r[6]}/{r[7]}/{r[0]}"
        lines.append(",".join(r) + "," + folder)
        if r[-1] != "00003.mp4":
            put(tiny, root, f"{r[5]}/{r[6]}/{r[7]}/{r[0]}/{r[8]}")
    (root / "meta_data.csv").write_text("\n".join(lines) + "\n")

    reader = detect(root)
    assert reader is not None and reader.name == "fakeavceleb"
    recs = by_name(reader.records(root))
    assert set(recs) == {"00109.mp4", "00109_fake.mp4", "00109_2.mp4", "00001.mp4"}
    a, b, c, d = recs["00109.mp4"], recs["00109_fake.mp4"], recs["00109_2.mp4"], recs["00001.mp4"]
    assert (a.label, a.video_fake, a.audio_fake, a.av_mismatch) == ("real", 0, 0, 0)
    assert (b.label, b.video_fake, b.audio_fake) == ("fake", 0, 1)
    assert (c.video_fake, c.audio_fake, c.av_mismatch) == (1, 0, UNKNOWN)
    assert (d.video_fake, d.audio_fake) == (1, 1)
    assert a.group == b.group == c.group == "id00076"  # fakes grouped with their source identity
    assert a.identities == ("id00076",) and c.identities == ("id00076", "id00166")  # the target's face too
    assert len(reader.problems) == 2
    assert any(":6:" in p and "unknown category" in p for p in reader.problems)
    assert any("missing" in p for p in reader.problems)
    with pytest.raises(DatasetError, match="unknown category"):
        list(detect(root, strict=True).records(root))


def test_dfdc_parts_and_preview(tiny, tmp_path):
    root = tmp_path / "dfdc"
    meta = {"aaa.mp4": {"label": "FAKE", "split": "train", "original": "bbb.mp4"},
            "bbb.mp4": {"label": "REAL", "split": "train", "original": None},
            "ccc.mp4": {"label": "WEIRD", "split": "train"}}
    put(tiny, root, "dfdc_train_part_0/aaa.mp4", "dfdc_train_part_0/bbb.mp4", "dfdc_train_part_0/ccc.mp4")
    (root / "dfdc_train_part_0" / "metadata.json").write_text(json.dumps(meta))
    recs, reader = read(root)
    assert reader.name == "dfdc"
    r = by_name(recs)
    assert set(r) == {"aaa.mp4", "bbb.mp4"} and r["aaa.mp4"].label == "fake" and r["bbb.mp4"].label == "real"
    assert r["aaa.mp4"].group == r["bbb.mp4"].group  # a fake with its original
    assert r["aaa.mp4"].video_fake == UNKNOWN  # DFDC does not say which modality
    assert any("unknown label" in p for p in reader.problems)

    prev = tmp_path / "preview"
    entries = {"original_videos/1255229/1255229_A_001.mp4": {"label": "real", "set": "test"},
               "method_A/1255229/1255229_B/1255229_A_001.mp4": {"label": "fake", "set": "test"},
               "method_B/2000000/2000000_C/x.mp4": {"label": "fake", "set": "train"}}
    put(tiny, prev, *entries)
    (prev / "dataset.json").write_text(json.dumps(entries))
    recs, reader = read(prev)
    assert reader.name == "dfdc-preview" and len(recs) == 3
    assert {r.group for r in recs} == {"1255229", "2000000"}
    assert {r.split for r in recs} == {"test", "train"}


def test_faceforensics_pairs_and_compression(tiny, tmp_path):
    root = tmp_path / "ff"
    put(tiny, root, "original_sequences/youtube/c23/videos/071.mp4", "original_sequences/youtube/c23/videos/054.mp4",
        "manipulated_sequences/Deepfakes/c23/videos/071_054.mp4",
        "manipulated_sequences/Face2Face/c23/videos/054_071.mp4",
        "manipulated_sequences/Deepfakes/c40/videos/071_054.mp4")
    (root / "splits").mkdir()
    (root / "splits" / "test.json").write_text(json.dumps([["071", "054"]]))
    recs, reader = read(root)
    assert reader.name == "faceforensics" and len(recs) == 4  # c23 only by default
    assert {r.group for r in recs} == {"054_071"} and {r.split for r in recs} == {"test"}
    assert {r.category for r in recs if r.label == "fake"} == {"Deepfakes", "Face2Face"}
    c40 = list(datasets.FaceForensics(compression="c40").records(root))
    assert len(c40) == 1


def test_celebdf_one_means_real(tiny, tmp_path):
    root = tmp_path / "Celeb-DF-v2"
    put(tiny, root, "Celeb-real/id0_0000.mp4", "Celeb-synthesis/id0_id16_0000.mp4", "YouTube-real/00170.mp4",
        "Celeb-real/id1_0001.mp4")
    (root / "List_of_testing_videos.txt").write_text(
        "1 YouTube-real/00170.mp4\n0 Celeb-synthesis/id0_id16_0000.mp4\n1 Celeb-real/id0_0000.mp4\n"
        "1 Celeb-real/id9_0009.mp4\nbogus line\n")
    recs, reader = read(root)
    r = by_name(recs)
    assert r["00170.mp4"].label == "real" and r["id0_id16_0000.mp4"].label == "fake"
    assert r["id0_0000.mp4"].split == "test" and r["id1_0001.mp4"].split == "train"
    assert r["id0_0000.mp4"].group == r["id0_id16_0000.mp4"].group == "id0"
    assert r["id0_id16_0000.mp4"].identities == ("id0", "id16") and r["00170.mp4"].identities == ()
    # train/test only: inspect says what preprocess carves, a val split, out of train
    info = inspect(root)
    assert any("no val split of its own: carved from its train split" in n for n in info["carved"])
    assert set(info["splits_used"]) <= {"train", "val", "test"} and info["splits"] == {"test": 3, "train": 1}
    assert any("missing" in p for p in reader.problems) and any(":5:" in p for p in reader.problems)


def test_lavdf_segments_and_min_json(tiny, tmp_path):
    root = tmp_path / "LAV-DF"
    entries = [
        {"file": "train/000001.mp4", "n_fakes": 0, "fake_periods": [], "modify_video": False,
         "modify_audio": False, "split": "train", "original": None, "duration": 4.0},
        {"file": "train/000002.mp4", "n_fakes": 1, "fake_periods": [[1.2, 1.8]], "modify_video": True,
         "modify_audio": False, "split": "dev", "original": "train/000001.mp4", "duration": 4.0},
        {"file": "test/000003.mp4", "n_fakes": 2, "fake_periods": [[0.5, 0.9], [2.0, 2.5]], "modify_video": True,
         "modify_audio": True, "split": "test", "original": "test/000004.mp4"},
        {"file": "test/000005.mp4", "fake_periods": [[2.0, 1.0]], "modify_video": True, "modify_audio": False},
    ]
    put(tiny, root, *(e["file"] for e in entries))
    (root / "metadata.min.json").write_text(json.dumps(entries))
    recs, reader = read(root)
    assert reader.name == "lavdf"
    r = by_name(recs)
    assert r["000002.mp4"].fake_segments == ((1.2, 1.8),) and r["000002.mp4"].video_fake == 1
    assert r["000002.mp4"].group == r["000001.mp4"].group and r["000001.mp4"].label == "real"
    assert r["000002.mp4"].split == "val"  # LAV-DF's dev split is a val split
    assert any("split leak" in p and "train/val" in p for p in inspect(root)["problems"])  # (its group straddles)
    assert r["000003.mp4"].category == "both" and len(r["000003.mp4"].fake_segments) == 2
    assert "000005.mp4" not in r and any("ends before it starts" in p for p in reader.problems)


def test_avdeepfake1m_modify_type_spellings(tiny, tmp_path):
    root = tmp_path / "AV-Deepfake1M"
    entries = [
        {"file": "lrs3/a/1.mp4", "original": None, "split": "train", "modify_type": "real", "fake_segments": []},
        {"file": "lrs3/a/2.mp4", "original": "lrs3/a/1.mp4", "split": "train", "modify_type": "both-modified",
         "fake_segments": [[0.4, 0.7]]},
        {"file": "lrs3/a/3.mp4", "original": "lrs3/a/1.mp4", "split": "train", "modify_type": "both_modified",
         "fake_segments": [[1.0, 1.3]]},
        {"file": "lrs3/b/4.mp4", "original": None, "split": "train", "modify_type": "audio_modified",
         "fake_segments": [[0.1, 0.2]]},
        {"file": "lrs3/b/5.mp4", "original": None, "split": "train", "modify_type": "who_knows"},
    ]
    put(tiny, root, *(f"train/{e['file']}" for e in entries))
    (root / "train_metadata.json").write_text(json.dumps(entries))
    recs, reader = read(root)
    r = by_name(recs)
    assert reader.name == "av-deepfake1m"
    assert r["2.mp4"].category == r["3.mp4"].category == "both_modified"
    assert (r["2.mp4"].video_fake, r["2.mp4"].audio_fake) == (1, 1)
    assert (r["4.mp4"].video_fake, r["4.mp4"].audio_fake) == (0, 1) and r["4.mp4"].fake_segments == ((0.1, 0.2),)
    assert r["1.mp4"].group == r["2.mp4"].group
    assert "5.mp4" not in r and any("unknown modify_type" in p for p in reader.problems)


def test_deepfaketimit_and_generic_layouts(tiny, tmp_path):
    timit = tmp_path / "DeepfakeTIMIT"
    put(tiny, timit, "higher_quality/fadg0/sa1-video-fram1.avi", "lower_quality/fadg0/sa1-video-fram1.avi",
        "real/fadg0/sa1.avi")
    recs, reader = read(timit)
    assert reader.name == "deepfaketimit" and len(recs) == 3
    assert sorted(r.label for r in recs) == ["fake", "fake", "real"] and {r.group for r in recs} == {"fadg0"}

    folders = tmp_path / "mine"
    put(tiny, folders, "real/alice/1.mp4", "real/bob.mp4", "fake/alice/2.mp4")
    recs, reader = read(folders)
    assert reader.name == "real-fake-folders"
    r = by_name(recs)
    assert r["1.mp4"].group == r["2.mp4"].group == "alice" and r["2.mp4"].label == "fake"

    lst = tmp_path / "lst"
    put(tiny, lst, "v1.mp4", "v2.mp4")
    (lst / "labels.csv").write_text("path,label,group\nv1.mp4,0,g1\nv2.mp4,fake,g1\nv3.mp4,maybe,g2\n")
    recs, reader = read(lst)
    assert reader.name == "csv" and [r.label for r in recs] == ["real", "fake"]
    assert any("labels.csv:4" in p for p in reader.problems)


def test_malformed_metadata_names_the_file(tmp_path):
    root = tmp_path / "LAV"
    root.mkdir()
    (root / "metadata.json").write_text('[{"file": "a.mp4", "fake_periods": [], "modify_video": false},\n oops')
    reader = detect(root)
    assert reader is not None
    with pytest.raises(DatasetError, match=r"metadata.json:2: not valid JSON"):
        list(reader.records(root))


def test_group_aware_splits_never_leak(tiny, tmp_path):
    root = tmp_path / "mine"
    rels = [f"{lab}/p{p}/{i}.mp4" for lab in ("real", "fake") for p in range(40) for i in range(2)]
    put(tiny, root, *rels)
    recs, _ = read(root)
    split = assign_splits(recs, seed=3)
    assert not split_leaks(split)
    assert {r.split for r in split} == {"train", "val", "test"}
    # the dataset's own split is kept unless asked otherwise
    assert all(r.split == "x" for r in assign_splits([replace(s, split="x") for s in recs]))


def test_inspect_cli_json(tiny, tmp_path, capsys):
    root = tmp_path / "mine"
    put(tiny, root, "real/a.mp4", "fake/b.mp4")
    assert main(["datasets", "inspect", str(root), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["layout"] == "real-fake-folders" and info["videos"] == 2
    assert info["labels"] == {"real": 1, "fake": 1} and info["problems"] == []
    assert set(info) >= {"layout", "videos", "labels", "categories", "splits", "problems"}
    assert main(["datasets", "inspect", str(tmp_path / "nothing-here")]) == 2
    assert inspect(root)["groups"] == 2


def _entry_line(text: str, video: str) -> int:
    """The line of the ``{`` that opens the entry of ``video`` in an indented JSON list."""
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if f'"file": "{video}"' in line)
    return next(i for i in range(at, -1, -1) if lines[i].strip() == "{") + 1


def test_lavdf_malformed_segments_reported_clipped_or_skipped(tiny, tmp_path):
    root = tmp_path / "LAV-DF"
    rows = [  # (file, fake_periods, extra fields, what happens)
        ("ok.mp4", [[1.0, 1.5]], {}, ((1.0, 1.5),)),
        ("neg.mp4", [[-0.2, 0.5]], {}, ((0.0, 0.5),)),
        ("past.mp4", [[3.5, 4.6]], {}, ((3.5, 4.0),)),
        ("rounding.mp4", [[3.5, 4.0005]], {}, ((3.5, 4.0),)),  # metadata's ms rounding: clipped, not a problem
        ("overlap.mp4", [[1.0, 2.0], [1.5, 2.5], [3.0, 3.2]], {}, ((1.0, 2.5), (3.0, 3.2))),
        ("unsorted.mp4", [[2.5, 3.0], [0.5, 1.0]], {}, ((0.5, 1.0), (2.5, 3.0))),  # order is no problem
        ("beyond.mp4", [[4.5, 5.0]], {}, None),
        ("backwards.mp4", [[2.0, 1.0]], {}, None),
        ("garbage.mp4", [[1.0, "x"]], {}, None),
        ("frames.mp4", [[3.0, 4.5]], {"duration": None, "video_frames": 100}, ((3.0, 4.0),)),  # 100 frames at 25 fps
    ]
    entries = [{"file": f, "n_fakes": len(p), "fake_periods": p, "modify_video": True, "modify_audio": False,
                "split": "train", "original": None, "duration": 4.0, **extra} for f, p, extra, _ in rows]
    put(tiny, root, *(e["file"] for e in entries))
    text = json.dumps(entries, indent=1)
    (root / "metadata.json").write_text(text)
    recs, reader = read(root)
    r = by_name(recs)
    for i, (f, _, _, want) in enumerate(rows):
        if want is None:
            assert f not in r, f
        else:
            assert r[f].fake_segments == want, f
        reported = [p for p in reader.problems if f"({f})" in p]
        quiet = f in ("ok.mp4", "rounding.mp4", "unsorted.mp4")
        assert len(reported) == (0 if quiet else 1), (f, reader.problems)
        if reported:  # file, line of the entry in the JSON text, and its index in the list
            assert reported[0].startswith(f"{root / 'metadata.json'}:{_entry_line(text, f)}: entry {i} ({f}): ")
    said = "\n".join(reader.problems)
    assert "[-0.2, 0.5] starts before 0 s: clipped to [0, 0.5]" in said
    assert "[3.5, 4.6] runs past the video's end (4 s): clipped to [3.5, 4]" in said
    assert "[1, 2] and [1.5, 2.5] overlap: merged into [1, 2.5]" in said
    assert "[4.5, 5] lies wholly beyond the video's end (4 s): row skipped" in said
    assert "[2, 1] ends before it starts: row skipped" in said
    assert "malformed fake_periods" in said
    with pytest.raises(DatasetError, match=r"metadata.json:\d+: entry 1 \(neg.mp4\): .*starts before 0 s"):
        list(detect(root, strict=True).records(root))


def test_avdeepfake1m_per_modality_segments_and_malformed_rows(tiny, tmp_path):
    root = tmp_path / "AV-Deepfake1M"

    def entry(name, kind, segs, **extra):
        return {"file": f"vox/a/{name}.mp4", "original": "vox/a/real.mp4", "split": "val", "modify_type": kind,
                "fake_segments": segs, "video_frames": 50, **extra}

    entries = [
        entry("both", "both_modified", [[0.4, 0.7], [1.0, 1.3]], visual_fake_segments=[[0.4, 0.7]],
              audio_fake_segments=[[1.0, 1.3]]),
        entry("v1", "visual_modified", [[0.2, 0.5]]),  # a release without per-modality fields
        # the other stream's list filled although modify_type says it is real: reported, ignored
        entry("leak", "audio_modified", [[1.0, 1.3]], visual_fake_segments=[[1.0, 1.3]],
              audio_fake_segments=[[1.0, 1.3]]),
        entry("past", "visual_modified", [[0.8, 1.4]], video_frames=25, visual_fake_segments=[[0.8, 1.4]],
              audio_fake_segments=[]),
        entry("overlap", "audio_modified", [[0.2, 0.5], [0.4, 0.6]], audio_fake_segments=[[0.2, 0.5], [0.4, 0.6]]),
        entry("backwards", "both_modified", [[0.3, 0.5]], visual_fake_segments=[[0.5, 0.3]],
              audio_fake_segments=[[0.3, 0.5]]),
        {**entry("beyond", "audio_modified", [[2.5, 3.0]], duration=2.0), "video_frames": None},
    ]
    put(tiny, root, *(f"val/{e['file']}" for e in entries))
    text = json.dumps(entries, indent=2)
    (root / "val_metadata.json").write_text(text)
    recs, reader = read(root)
    r = by_name(recs)
    assert set(r) == {"both.mp4", "v1.mp4", "leak.mp4", "past.mp4", "overlap.mp4"}
    both = r["both.mp4"]
    assert both.video_segments == ((0.4, 0.7),) and both.audio_segments == ((1.0, 1.3),)
    assert both.modality_segments("video") == ((0.4, 0.7),) and both.modality_segments("any") == both.fake_segments
    assert r["v1.mp4"].video_segments is None and r["v1.mp4"].modality_segments("video") == ((0.2, 0.5),)
    assert r["leak.mp4"].video_segments == () and r["leak.mp4"].audio_segments == ((1.0, 1.3),)
    assert r["past.mp4"].fake_segments == r["past.mp4"].video_segments == ((0.8, 1.0),)  # 25 frames: 1 s
    assert r["past.mp4"].audio_segments == ()
    assert r["overlap.mp4"].fake_segments == r["overlap.mp4"].audio_segments == ((0.2, 0.6),)
    meta = root / "val_metadata.json"
    for i, e in enumerate(entries):
        name = Path(e["file"]).name
        reported = [p for p in reader.problems if f"({e['file']})" in p]
        assert len(reported) == (0 if name in ("both.mp4", "v1.mp4") else 1), (name, reader.problems)
        if reported:
            assert reported[0].startswith(f"{meta}:{_entry_line(text, e['file'])}: entry {i} ({e['file']}): ")
    said = "\n".join(reader.problems)
    assert "visual_fake_segments [[1.0, 1.3]] given although modify_type 'audio_modified'" in said
    assert "fake_segments: segment [0.8, 1.4] runs past the video's end (1 s): clipped to [0.8, 1]" in said
    assert "visual_fake_segments: segment [0.8, 1.4] runs past" in said
    assert "audio_fake_segments: segments [0.2, 0.5] and [0.4, 0.6] overlap" in said
    assert "visual_fake_segments: segment [0.5, 0.3] ends before it starts: row skipped" in said
    assert "[2.5, 3] lies wholly beyond the video's end (2 s): row skipped" in said
