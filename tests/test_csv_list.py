"""CSV lists: one parser (``dfdetect.datasets.generic.read_csv_list``) for ``dfdetect preprocess list.csv`` and the
``labels.csv`` dataset reader; every label and split spelling both understand; bad rows skipped with file:line.
Pure Python: no video is decoded (the preprocess run's per-video work is stubbed)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dfdetect.cli import main
from dfdetect.datasets import read
from dfdetect.datasets.base import normalise_label, normalise_split
from dfdetect.datasets.generic import read_csv_list
from dfdetect.records import UNKNOWN

LIST = ("path,label,group,split,video_fake\n"
        "a.mp4,real,g1,validation,0\n"
        "b.mp4,Manipulated,g1,dev,\n"
        "c.mp4,maybe,g2,train,\n"          # line 4: unknown label
        "d.mp4,TRUE,g3,testing,1\n"
        "e.mp4,original,g4,holdout-2,\n"   # line 6: unknown split
        "f.mp4,0,,,2\n"                    # line 7: bad per-modality label
        ",1,g5,train,\n"                   # line 8: no path
        "gs://bucket/x.mp4,pristine,,Training,\n")


def test_label_and_split_spellings():
    assert [normalise_label(v) for v in ("real", "ORIGINAL", " false", "0", "fake", "manipulated", "True", "1",
                                         "maybe", "")] == ["real"] * 4 + ["fake"] * 4 + [None, None]
    assert [normalise_split(v) for v in ("train", "Training", "validation", "dev", "VAL", "testing", "test", "",
                                         "holdout-2")] == ["train", "train", "val", "val", "val", "test", "test",
                                                           "", None]


def test_one_parser_skips_bad_rows_with_file_and_line(tmp_path):
    lst = tmp_path / "list.csv"
    lst.write_text(LIST)
    problems: list[str] = []
    recs = {Path(r.path).name: r for r in read_csv_list(lst, problem=lambda w, r: problems.append(f"{w}: {r}"))}
    assert set(recs) == {"a.mp4", "b.mp4", "d.mp4", "x.mp4"}
    assert (recs["a.mp4"].label, recs["a.mp4"].split, recs["a.mp4"].video_fake) == ("real", "val", 0)
    assert (recs["b.mp4"].label, recs["b.mp4"].split, recs["b.mp4"].video_fake) == ("fake", "val", UNKNOWN)
    assert (recs["d.mp4"].label, recs["d.mp4"].split) == ("fake", "test")
    assert recs["x.mp4"].path == "gs://bucket/x.mp4" and recs["x.mp4"].split == "train"
    assert recs["a.mp4"].path == str(tmp_path / "a.mp4")  # relative to the CSV's folder
    assert [p.split(": ")[0] for p in problems] == [f"{lst}:{n}" for n in (4, 6, 7, 8)]
    assert "unknown label 'maybe'" in problems[0] and "unknown split 'holdout-2'" in problems[1]
    # the dataset reader's labels.csv is the same parser: same rows, same reasons
    (tmp_path / "labels.csv").write_text(LIST)
    for name in ("a.mp4", "b.mp4", "d.mp4"):
        (tmp_path / name).write_bytes(b"")
    recs2, reader = read(tmp_path)
    assert reader.name == "csv" and sorted(Path(r.path).name for r in recs2) == ["a.mp4", "b.mp4", "d.mp4"]
    assert {p.split(": ")[0] for p in reader.problems} >= {f"{tmp_path / 'labels.csv'}:{n}" for n in (4, 6, 7, 8)}


def test_header_less_list_and_identities(tmp_path):
    lst = tmp_path / "bare.csv"
    lst.write_text("clips/a.mp4,1\nb.mp4,real\n")  # no header: the first line is a video, not lost
    recs = list(read_csv_list(lst))
    assert [(Path(r.path).name, r.label, r.group) for r in recs] == [("a.mp4", "fake", "a"), ("b.mp4", "real", "b")]
    ids = tmp_path / "ids.csv"
    ids.write_text('path,label,group,identities\nv.mp4,fake,id0,id0|id16\nw.mp4,fake,id1,"[""id1"", ""id3""]"\n')
    assert [r.identities for r in read_csv_list(ids)] == [("id0", "id16"), ("id1", "id3")]


def test_preprocess_list_runs_the_good_rows_and_names_the_bad_line(tmp_path, stub_videos, capsys):
    lst = tmp_path / "list.csv"
    lst.write_text(LIST)
    rc = main(["preprocess", str(lst), "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress"])
    assert rc == 3  # every (stubbed) video failed; the bad rows did not stop the run
    m = pd.read_csv(tmp_path / "out" / "manifest.csv", keep_default_na=False)
    assert sorted(Path(p).name for p in m.path) == ["a.mp4", "b.mp4", "d.mp4", "x.mp4"]
    assert dict(zip(m.path.map(lambda p: Path(p).name), m.split)) == {"a.mp4": "val", "b.mp4": "val",
                                                                      "d.mp4": "test", "x.mp4": "train"}
    err = capsys.readouterr().err
    assert f"{lst}:4: unknown label 'maybe'" in err and f"{lst}:6: unknown split" in err
