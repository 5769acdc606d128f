"""``dfdetect preprocess --runner beam``: Beam's DirectRunner (two worker processes) writes the windows and the
manifest of the local run, resumes a run that was killed, changes nothing when rerun on a finished folder, and
says how to install Beam when it is missing."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dfdetect.cli import main
from dfdetect.config import get_config
from dfdetect.media import write_video
from dfdetect.preprocess import preprocess
from dfdetect.records import VideoRecord
from dfdetect.sample_media import talking_clip, tone

CFG = get_config("smoke")  # 12 fps, 1 s windows, 64 px crops
HAVE_BEAM = importlib.util.find_spec("apache_beam") is not None
needs_beam = pytest.mark.skipif(not HAVE_BEAM, reason='apache-beam is not installed: pip install "dfdetect[beam]"')
# what differs between two runs of the same input by design: timing, and where its windows were written
RUN_COLUMNS = ["seconds", "shard", "offset", "length"]

if HAVE_BEAM:
    from apache_beam.io.localfilesystem import LocalFileSystem

    class FakeBucket(LocalFileSystem):
        """``fakegs://b/x`` -> ``ROOT/b/x``: a stand-in for GCS (flat names, no folders to create) that takes
        the Beam runner through its URL code paths, which name files by URL, never by local path."""

        ROOT = ""

        @classmethod
        def scheme(cls) -> str:
            return "fakegs"

        def _loc(self, path: str) -> str:
            return os.path.join(self.ROOT, path[len("fakegs://"):]) if path.startswith("fakegs://") else path

        def create(self, path, *args, **kwargs):
            return super().create(self._loc(path), *args, **kwargs)

        def open(self, path, *args, **kwargs):
            return super().open(self._loc(path), *args, **kwargs)

        def exists(self, path):
            return super().exists(self._loc(path))

        def rename(self, sources, destinations):
            for d in destinations:  # a bucket can put a name anywhere
                os.makedirs(os.path.dirname(self._loc(d)), exist_ok=True)
            super().rename([self._loc(p) for p in sources], [self._loc(p) for p in destinations])

        def delete(self, paths):
            for p in paths:
                os.remove(self._loc(p))

        def match(self, patterns, limits=None):
            results = super().match([self._loc(p) for p in patterns], limits)
            for r in results:
                for m in r.metadata_list:
                    m.path = "fakegs://" + os.path.relpath(m.path, self.ROOT)
            return results


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A labelled CSV list: three talking clips (one a partial fake), a faceless clip and a broken file."""
    d = tmp_path_factory.mktemp("beam_corpus")
    for i, photo in enumerate(["astronaut", "grace_hopper", "astronaut"]):
        talking_clip(d / f"talk{i}.mp4", photo=photo, seconds=2.0, seed=i)
    write_video(d / "noface.mp4", [np.full((240, 320, 3), 30 + i, np.uint8) for i in range(50)], fps=25,
                audio=tone(2.0))
    (d / "broken.mp4").write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 20000, dtype=np.uint8)))
    pd.DataFrame({
        "path": ["talk0.mp4", "talk1.mp4", "talk2.mp4", "noface.mp4", "broken.mp4"],
        "label": ["real", "fake", "real", "real", "fake"],
        "group": ["a", "b", "a", "c", "b"],
        "video_fake": [0, 1, 0, 0, 1],
        "audio_fake": [0, 0, 0, 0, 1],
        "fake_segments": ["", "[[0.2, 0.6]]", "", "", ""],  # windows of talk1 differ in window_fake
    }).to_csv(d / "list.csv", index=False)
    return d / "list.csv"


@pytest.fixture(scope="module")
def local_run(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    preprocess([inputs], out, config=CFG, workers=1, progress=False)
    return out


def _windows(out: Path) -> dict[tuple[str, int], dict[str, list]]:
    """Every window in OUT/shards, by (video path, index): each feature's exact values (frame PNG bytes, audio
    bytes, mask, mouth, labels...). Fails on a window stored twice."""
    import tensorflow as tf

    from dfdetect.shards import iter_records

    found: dict[tuple[str, int], dict[str, list]] = {}
    for shard in sorted((out / "shards").glob("*.tfrecord")):
        for raw in iter_records(shard):
            feats = tf.train.Example.FromString(raw).features.feature
            key = (feats["path"].bytes_list.value[0].decode(), feats["index"].int64_list.value[0])
            assert key not in found, f"window {key} is stored twice"
            found[key] = {k: list(getattr(v, v.WhichOneof("kind")).value) for k, v in feats.items()}
    return found


def _table(path: Path, drop: list[str], by: list[str]) -> pd.DataFrame:
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    return df.drop(columns=drop).sort_values(by).reset_index(drop=True)


def _snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def beam_run(inputs, tmp_path_factory) -> tuple[Path, int, str]:
    """A Beam run that resumes a killed one: one batch already committed but not merged (its launcher died), a
    shard whose batch never committed (its worker died) and a half-written temporary file; then the full run on
    the DirectRunner with two worker processes, through the command line."""
    from dfdetect import beam

    out = tmp_path_factory.mktemp("beam") / "out"
    talk0 = next(r for r in beam.collect([inputs]) if r.path.endswith("talk0.mp4"))
    try:
        beam.process_batch("killedlauncher", [talk0], CFG, str(out))
    finally:
        pool = beam._CHILD.pop("pool", None)
        if pool is not None:
            pool.shutdown()
    (out / "shards" / "beam-killedworker-00000000-000.tfrecord").write_bytes(b"\0" * 5000)
    (out / ".beam" / "tmp").mkdir(parents=True, exist_ok=True)
    (out / ".beam" / "tmp" / "beam-x-000.tfrecord.part").write_bytes(b"\0" * 100)
    assert not (out / "manifest.csv").exists()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["preprocess", str(inputs), "--out", str(out), "--config", "smoke", "--runner", "beam",
                     "--videos-per-shard", "2", "--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    return out, code, printed.getvalue()


@pytest.mark.beam
@needs_beam
def test_beam_run_equals_the_local_run(beam_run, local_run):
    out, code, printed = beam_run
    assert code == 3, printed  # the broken file failed, nothing hit a bug
    assert "4 ok, 1 failed" in printed and "(1 done in an earlier run)" in printed, printed
    # window for window: same keys, identical frames, audio, masks, labels
    ours, theirs = _windows(out), _windows(local_run)
    assert sorted(ours) == sorted(theirs) and len(ours) == 6  # 3 talking clips x 2 windows; no face: none
    for key in theirs:
        assert ours[key] == theirs[key], key
    assert {v["window_fake"][0] for k, v in ours.items() if k[0].endswith("talk1.mp4")} == {0, 1}
    # the same manifest rows (status, reason, counts, labels, splits), one per input
    m_beam = _table(out / "manifest.csv", RUN_COLUMNS, ["path"])
    m_local = _table(local_run / "manifest.csv", RUN_COLUMNS, ["path"])
    pd.testing.assert_frame_equal(m_beam, m_local)
    by_name = m_beam.set_index(m_beam.path.map(lambda p: Path(p).name))
    assert by_name.loc["broken.mp4", "status"] == "failed"
    assert by_name.loc["broken.mp4", "reason"].startswith("not a readable media file (")
    assert by_name.loc["noface.mp4", "status"] == "ok" and "no face" in by_name.loc["noface.mp4", "reason"]
    pd.testing.assert_frame_equal(_table(out / "windows.csv", ["shard"], ["video_id", "index"]),
                                  _table(local_run / "windows.csv", ["shard"], ["video_id", "index"]))
    # every manifest row points at its own windows; nothing else is left in shards/ or the work folder
    manifest = pd.read_csv(out / "manifest.csv", keep_default_na=False)
    shards = {f"shards/{p.name}" for p in (out / "shards").glob("*")}
    assert shards == set(manifest.shard[manifest.shard != ""])  # the dead worker's shard is gone
    assert not (out / ".beam").exists()  # committed batches merged, the half-written file removed
    from dfdetect.shards import iter_records

    for row in manifest[manifest.windows > 0].itertuples():
        start, length = int(row.offset), int(row.length)
        data = (out / row.shard).read_bytes()[start: start + length]
        tmp = out.parent / "one.tfrecord"
        tmp.write_bytes(data)
        assert len(list(iter_records(tmp))) == row.windows


@pytest.mark.beam
@needs_beam
def test_beam_rerun_on_a_finished_folder_changes_nothing(beam_run, inputs, capsys):
    out, _, _ = beam_run
    before = _snapshot(out)
    code = main(["preprocess", str(inputs), "--out", str(out), "--config", "smoke", "--runner", "beam",
                 "--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    printed = capsys.readouterr().out
    assert code == 3  # the broken file is still failed, and not retried without --retry-failed
    assert "(5 done in an earlier run)" in printed and "4 ok, 1 failed" in printed, printed
    assert _snapshot(out) == before


@pytest.mark.beam
@needs_beam
def test_beam_options_only_with_the_beam_runner(tmp_path, capsys):
    code = main(["preprocess", str(tmp_path), "--out", str(tmp_path / "out"), "--direct_num_workers=2"])
    assert code == 2 and "Beam pipeline options need --runner beam" in capsys.readouterr().err
    code = main(["preprocess", str(tmp_path), "--out", str(tmp_path / "out"), "--runner", "beam",
                 "--workers", "2"])
    assert code == 2 and "--workers is for --runner local" in capsys.readouterr().err
    code = main(["preprocess", str(tmp_path), "--out", str(tmp_path / "out"), "--runner", "DataflowRunner"])
    assert code == 2 and "gs://" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.beam
@needs_beam
def test_beam_run_reads_and_writes_a_bucket(inputs, local_run, tmp_path):
    """gs://-style inputs (a CSV list of relative paths, a missing video) and output through Beam's file systems,
    on the in-process DirectRunner: the same windows and rows as the local run of the same files."""
    from dfdetect import beam

    FakeBucket.ROOT = str(tmp_path)
    (tmp_path / "b" / "videos").mkdir(parents=True)
    for f in inputs.parent.glob("*.mp4"):
        shutil.copy(f, tmp_path / "b" / "videos" / f.name)
    listed = pd.read_csv(inputs, dtype=str, keep_default_na=False)
    listed["path"] = "videos/" + listed.path
    missing = pd.DataFrame([{c: "" for c in listed.columns} | {"path": "videos/missing.mp4", "label": "real"}])
    pd.concat([listed, missing]).to_csv(tmp_path / "b" / "list.csv", index=False)
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            code = main(["preprocess", "fakegs://b/list.csv", "--out", "fakegs://b/out", "--config", "smoke",
                         "--runner", "beam", "--direct_running_mode=in_memory"])
    finally:
        pool = beam._CHILD.pop("pool", None)
        if pool is not None:
            pool.shutdown()
    assert code == 3 and "4 ok, 2 failed" in printed.getvalue(), printed.getvalue()
    out = tmp_path / "b" / "out"
    m = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert m.path.str.startswith("fakegs://b/videos/").all()
    row = m.set_index("path").loc["fakegs://b/videos/missing.mp4"]
    assert (row.status, row.reason) == ("failed", "file not found: fakegs://b/videos/missing.mp4")
    named = ["path", "video_id"]  # the only fields that name where the video was
    ours = m.drop(columns=RUN_COLUMNS + named).assign(name=m.path.map(os.path.basename))
    theirs = pd.read_csv(local_run / "manifest.csv", dtype=str, keep_default_na=False)
    theirs = theirs.drop(columns=RUN_COLUMNS + named).assign(name=theirs.path.map(os.path.basename))
    ours = ours[ours.name != "missing.mp4"].sort_values("name").reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, theirs.sort_values("name").reset_index(drop=True))
    windows = {(os.path.basename(k[0]), k[1]): {f: v for f, v in w.items() if f not in named}
               for k, w in _windows(out).items()}
    local = {(os.path.basename(k[0]), k[1]): {f: v for f, v in w.items() if f not in named}
             for k, w in _windows(local_run).items()}
    assert windows == local and len(windows) == 6
    assert not list((out / ".beam").rglob("*.*"))  # merged and cleaned (a real bucket has no folders at all)


@pytest.mark.beam
@needs_beam
def test_workers_share_one_child_per_process():
    """Beam ships the DoFn pickled by value: its methods must still reach the worker process's own child (one
    video at a time per process), not a copy of the module state per DoFn instance."""
    from apache_beam.internal import pickler

    from dfdetect import beam

    shipped = pickler.loads(pickler.dumps(beam._dofn(CFG, "/tmp/out")))
    for method, name in ((type(shipped).process, "process_batch"), (type(shipped).teardown, "_close_child")):
        assert method.__globals__[name] is getattr(beam, name)
    assert beam._run_isolated.__globals__["_CHILD"] is beam._CHILD


def test_beam_runner_without_beam_says_how_to_install_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # `import apache_beam` now raises ImportError
    code = main(["preprocess", str(tmp_path), "--out", str(tmp_path / "out"), "--runner", "beam",
                 "--direct_num_workers=2"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and 'pip install "dfdetect[beam]"' in err, err
    assert not (tmp_path / "out").exists()  # nothing was started


def test_local_runner_reads_video_records_and_bucket_paths(tmp_path, monkeypatch):
    """The pieces the Beam runner shares: records pass through collect_inputs, a gs:// path in a CSV list stays
    absolute, and its video id does not depend on this machine's working folder."""
    from dfdetect.preprocess import collect_inputs, video_id

    lst = tmp_path / "list.csv"
    pd.DataFrame({"path": ["gs://b/v/a.mp4", "rel.mp4"], "label": ["fake", "real"]}).to_csv(lst, index=False)
    recs = collect_inputs([lst, VideoRecord(path="gs://b/v/c.mp4", label="real")])
    assert [r.path for r in recs] == ["gs://b/v/a.mp4", str(tmp_path / "rel.mp4"), "gs://b/v/c.mp4"]
    assert all(r.split for r in recs)
    here = video_id("gs://b/v/a.mp4")
    monkeypatch.chdir(tmp_path)
    assert video_id("gs://b/v/a.mp4") == here
