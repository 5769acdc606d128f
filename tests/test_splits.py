"""Splits by identity component: every id a clip names joins its groups (union-find), each component lands on
one side, a dataset's missing val/test are carved from its train split (seeded, said in the log), and a leaking
split is refused when preprocessing and training start (exit 2) or, with --allow-leaks, warned about.
Pure Python on records and hand-written manifests: no video is decoded."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pandas as pd
import pytest

from dfdetect import preprocess as pp
from dfdetect.cli import main
from dfdetect.datasets import (
    SplitLeakError,
    _hashed,
    assign_splits,
    carve_splits,
    check_leaks,
    data_leaks,
    group_components,
    split_leaks,
)
from dfdetect.records import VideoRecord

THIRDS = {"train": 0.7, "val": 0.15, "test": 0.15}


def fakeavceleb_like(people: int = 60) -> list[VideoRecord]:
    """Each person: two real clips; a fake of person i with person i+1's face (FakeAVCeleb's target1) for every
    third person, so components span two or more ids."""
    recs = []
    for i in range(people):
        me = f"id{i:05d}"
        recs += [VideoRecord(path=f"/d/{me}/{k}.mp4", label="real", group=me, identities=(me,)) for k in range(2)]
        if i % 3 == 0:
            other = f"id{i + 1:05d}"
            recs.append(VideoRecord(path=f"/d/{me}/fake.mp4", label="fake", group=me, identities=(me, other)))
    return recs


def sides_by_id(records: list[VideoRecord]) -> dict[str, set[str]]:
    out = defaultdict(set)
    for r in records:
        for k in (r.group, *r.identities):
            out[k].add(r.split)
    return out


def test_a_component_spanning_two_ids_never_crosses_splits():
    recs = fakeavceleb_like()
    comp = group_components(recs)
    by_path = dict(zip((r.path for r in recs), comp))
    assert by_path["/d/id00000/0.mp4"] == by_path["/d/id00001/0.mp4"] == "id00000"  # joined by the fake
    assert by_path["/d/id00001/0.mp4"] != by_path["/d/id00002/0.mp4"]
    # the case that matters: hashing groups alone would put some linked pair on two sides
    pairs = [(f"id{i:05d}", f"id{i + 1:05d}") for i in range(0, 60, 3)]
    assert any(_hashed(a, 0, THIRDS) != _hashed(b, 0, THIRDS) for a, b in pairs)
    split = assign_splits(recs)
    assert not split_leaks(split)
    assert all(len(s) == 1 for s in sides_by_id(split).values())  # every id, with every clip naming it, on one side
    assert set(Counter(r.split for r in split)) == {"train", "val", "test"}
    # a leak the old group-only check could not see: the fake's second id on another side
    leaky = [r if r.path != "/d/id00001/0.mp4" else VideoRecord(path=r.path, group=r.group, split="test")
             for r in [VideoRecord(path=r.path, group=r.group, identities=r.identities, split="train") for r in recs]]
    assert set(split_leaks(leaky)) == {"id00000"}
    with pytest.raises(SplitLeakError, match=r"group 'id00000' \(with id00001\) is in train/test"):
        check_leaks(leaky)
    assert "split leak" in check_leaks(leaky, allow=True)


def test_dfdc_all_train_gets_val_and_test_carved_by_group_deterministically():
    # DFDC: "split": "train" everywhere; a fake's group is its original
    recs = [VideoRecord(path=f"/p/{o}_{k}.mp4", label="fake" if k else "real", group=f"part0/{o}", split="train",
                        dataset="DFDC") for o in range(200) for k in range(3)]
    carved, notes = carve_splits(recs, seed=1)
    assert not split_leaks(carved)
    counts = Counter(r.split for r in carved)
    assert set(counts) == {"train", "val", "test"} and 0.10 < counts["val"] / len(recs) < 0.20
    assert any("DFDC: no val/test split of its own: carved from its train split" in n and "seed 1" in n
               for n in notes)
    assert [r.split for r in carve_splits(recs, seed=1)[0]] == [r.split for r in carved]  # same seed, same split
    assert [r.split for r in carve_splits(recs, seed=2)[0]] != [r.split for r in carved]
    # adding other inputs moves no carved group
    more = carve_splits(recs + [VideoRecord(path="/x.mp4", group="z", split="train", dataset="DFDC")], seed=1)[0]
    assert [r.split for r in more[:-1]] == [r.split for r in carved]


def test_celebdf_train_test_gets_val_from_wholly_train_components_only():
    recs = [VideoRecord(path=f"/c/yt{i}.mp4", label="real", group=f"yt{i}", split="train", dataset="Celeb-DF-v2")
            for i in range(60)]
    recs += [VideoRecord(path=f"/c/id{i}_0.mp4", label="real", group=f"id{i}", identities=(f"id{i}",),
                         split="test" if i < 5 else "train", dataset="Celeb-DF-v2") for i in range(40)]
    carved, notes = carve_splits(recs)
    assert {r.split for r in carved} == {"train", "val", "test"}
    # the official test list is kept as it is; val comes only out of train
    assert [r.path for r in carved if r.split == "test"] == [f"/c/id{i}_0.mp4" for i in range(5)]
    assert any("no val split of its own" in n for n in notes)


def test_a_giant_component_stays_in_train_and_unsplit_clips_join_their_component():
    recs = [VideoRecord(path=f"/g/{i}.mp4", group=f"p{i}", identities=("star",)) for i in range(50)]
    recs += [VideoRecord(path=f"/s/{i}.mp4", group=f"solo{i}") for i in range(50)]
    carved, notes = carve_splits(recs)
    assert {r.split for r in carved[:50]} == {"train"}  # half the data is one person: never val or test
    assert any("too big for val/test stay in train" in n for n in notes)
    # a clip without a split joins the side its component already has
    joined = carve_splits([VideoRecord(path="/a.mp4", group="a", split="val"),
                           VideoRecord(path="/b.mp4", group="b", identities=("a",))])[0]
    assert [r.split for r in joined] == ["val", "val"]


def test_preprocess_refuses_a_leaking_split_before_any_work(tmp_path, stub_videos, capsys):
    lst = tmp_path / "list.csv"
    lst.write_text("path,label,group,split,identities\n"
                   "a.mp4,real,alice,train,\n"
                   "b.mp4,fake,bob,test,bob|alice\n"  # bob's fake carries alice's face, on the test side
                   "c.mp4,real,carol,val,\n")
    out = tmp_path / "out"
    assert main(["preprocess", str(lst), "--out", str(out), "--workers", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "split leak" in err and "'alice' (with bob) is in train/test" in err and "--allow-leaks" in err
    assert not out.exists()  # refused before anything was processed or written
    assert main(["preprocess", str(lst), "--out", str(out), "--workers", "1", "--no-progress",
                 "--allow-leaks"]) == 3  # (stubbed videos all fail)
    assert "warning:" in capsys.readouterr().err
    m = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    assert json.loads(m.set_index("group").loc["bob", "identities"]) == ["bob", "alice"]  # kept for train's check


def _data(tmp_path, rows: list[dict], name: str = "manifest.csv"):
    data = tmp_path / "data"
    (data / "shards").mkdir(parents=True, exist_ok=True)
    (data / "shards" / "shard-00000.tfrecord").write_bytes(b"")
    pd.DataFrame(rows).to_csv(data / name, index=False)
    return data


def test_train_refuses_a_leaking_manifest_with_exit_2_naming_the_group(tmp_path, capsys):
    rows = [{"path": "/v/a.mp4", "status": "ok", "group": "id0", "split": "train", "identities": '["id0"]'},
            {"path": "/v/b.mp4", "status": "ok", "group": "id7", "split": "val", "identities": '["id7", "id0"]'},
            {"path": "/v/c.mp4", "status": "failed", "group": "id9", "split": "test", "identities": '["id0"]'}]
    data = _data(tmp_path, rows)
    rc = main(["train", "--data", str(data), "--out", str(tmp_path / "run"), "--config", "smoke"])
    err = capsys.readouterr().err
    assert rc == 2 and "split leak" in err and "group 'id0' (with id7) is in train/val" in err
    assert "id9" not in err  # a failed video has no windows: it leaks nothing
    assert not (tmp_path / "run").exists()
    assert "id0" in data_leaks(data, allow=True)


def test_old_folders_without_identities_still_checked_by_group(tmp_path):
    # a folder from before the identities column; a second --shard-index part written after it
    data = _data(tmp_path, [{"path": "/v/a.mp4", "status": "ok", "group": "g1", "split": "train"},
                            {"path": "/v/b.mp4", "status": "ok", "group": "g2", "split": "val"}])
    assert data_leaks(data) is None
    pd.DataFrame([{"path": "/v/c.mp4", "status": "ok", "group": "g3", "split": "test", "identities": '["g1"]'}]
                 ).to_csv(data / "manifest-001-of-002.csv", index=False)
    with pytest.raises(SplitLeakError, match="'g1' \\(with g3\\) is in train/test"):
        data_leaks(data)
    assert data_leaks(tmp_path / "nothing") is None  # no manifest: nothing to check


def test_preprocess_inputs_say_what_was_carved(tmp_path, capsys):
    # a DFDC part as it comes: "train" everywhere (videos absent: they would be failed rows, not a crash)
    part = tmp_path / "dfdc_train_part_0"
    part.mkdir()
    meta = {f"f{i}.mp4": {"label": "FAKE", "split": "train", "original": f"r{i % 40}.mp4"} for i in range(120)}
    meta.update({f"r{i}.mp4": {"label": "REAL", "split": "train", "original": None} for i in range(40)})
    (part / "metadata.json").write_text(json.dumps(meta))
    recs = pp.collect_inputs([part])
    err = capsys.readouterr().err
    assert "splits: DFDC: no val/test split of its own: carved from its train split by identity component" in err
    assert {r.split for r in recs} == {"train", "val", "test"} and not split_leaks(recs)
    sides = defaultdict(set)
    for r in recs:
        sides[r.group].add(r.split)
    assert all(len(s) == 1 for s in sides.values())  # a fake on its original's side
