"""Labels for partial fakes, and the aggregation of window scores, against answers computed by hand.

Every expected number below is worked out in the comment next to it; none is read back from the code.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dfdetect.config import get_config
from dfdetect.evaluate import auc_by_category, confident_mean, video_scores
from dfdetect.model import HEADS
from dfdetect.records import UNKNOWN, VideoRecord
from dfdetect.shards import MIN_FAKE_OVERLAP_S, fake_overlap, frame_labels, window_fake

CFG = get_config("smoke")  # 12 fps, 1 s windows (12 frames, 16000 samples), hop 1 s, 64 px crops
HEAD_WEIGHT = dict(zip(HEADS, CFG.train.head_weights))  # fake 1.0, the per-modality heads 0.5


def partial(*segments: tuple[float, float], path: str = "p.mp4", **labels) -> VideoRecord:
    """A partial fake whose video track is manipulated (LAV-DF's ``video`` kind), av_mismatch unknown."""
    kw = dict(label="fake", video_fake=1, audio_fake=0, av_mismatch=UNKNOWN, split="test", method="partial-video",
              category="C", dataset="LAV-DF")
    kw.update(labels)
    return VideoRecord(path=path, fake_segments=segments, **kw)


# ---------------------------------------------------------------------------------------------------------
# 1. window_fake: the label of one window
# ---------------------------------------------------------------------------------------------------------

def test_min_overlap_is_about_a_frame():
    # one frame lasts 1/12 = 0.083 s at 12 fps and 1/15 = 0.067 s at 15 fps: 0.1 s is a frame with margin
    assert 1 / 12 < MIN_FAKE_OVERLAP_S < 2 / 12


@pytest.mark.parametrize("segment, expected", [
    ((1.2, 1.5), 1),      # inside: 0.3 s of fake
    ((0.5, 3.0), 1),      # covers the whole window: 1.0 s
    ((0.5, 1.001), 0),    # touches the window by 1 ms: 1.001 - 1.0 = 0.001 s < 0.1, and not wholly inside
    ((1.999, 2.5), 0),    # the same at the far end: 2.0 - 1.999 = 0.001 s
    ((0.5, 1.0), 0),      # ends where the window starts: 0 s of overlap
    ((2.0, 2.5), 0),      # starts where the window ends (the window is [1, 2)): 0 s
    ((0.9, 1.1), 1),      # exactly the minimum: 1.1 - 1.0 = 0.1 s
    ((1.9, 2.1), 1),      # exactly the minimum at the far end: 2.0 - 1.9 = 0.1 s
    ((0.8, 1.09), 0),     # just under: 1.09 - 1.0 = 0.09 s
    ((1.40, 1.45), 1),    # 0.05 s, shorter than the minimum, but wholly inside the window: still a fake
    ((1.95, 2.0), 1),     # 0.05 s ending exactly at the window's end: wholly inside
    ((1.0, 1.05), 1),     # 0.05 s starting exactly at the window's start: wholly inside
    ((1.97, 2.03), 0),    # 0.06 s straddling the end: 0.03 s here, not wholly inside (see the report)
    ((1.5, 1.5), 0),      # zero length: manipulates nothing
])
def test_window_fake_one_segment(segment, expected):
    assert window_fake(partial(segment), 1.0, 1.0) == expected


def test_window_fake_float_tolerance():
    # window [0.2, 1.2), segment (0, 0.3): the overlap is 0.3 - 0.2 = 0.1 s, which floats give as
    # 0.09999999999999998; it must count as the minimum, not fall short of it
    assert 0.3 - 0.2 < 0.1
    assert window_fake(partial((0.0, 0.3)), 0.2, 1.0) == 1


def test_window_fake_two_segments_in_one_window():
    # window [1, 2): (0.5, 1.06) gives 0.06 s and (1.96, 2.5) gives 0.04 s: 0.10 s together -> fake,
    # though neither alone reaches 0.1 s nor lies wholly inside
    assert window_fake(partial((0.5, 1.06)), 1.0, 1.0) == 0
    assert window_fake(partial((1.96, 2.5)), 1.0, 1.0) == 0
    assert window_fake(partial((0.5, 1.06), (1.96, 2.5)), 1.0, 1.0) == 1
    # 0.05 + 0.04 = 0.09 s -> real
    assert window_fake(partial((0.5, 1.05), (1.96, 2.5)), 1.0, 1.0) == 0


def test_window_fake_overlapping_segments_count_once():
    # (0.5, 1.06) and (0.9, 1.06) both cover [1.0, 1.06) of the window [1, 2): the union is 0.06 s, not
    # 0.06 + 0.06 = 0.12 s
    assert window_fake(partial((0.5, 1.06), (0.9, 1.06)), 1.0, 1.0) == 0
    assert fake_overlap([(0.5, 1.06), (0.9, 1.06)], 1.0, 2.0) == pytest.approx(0.06)
    # unsorted, nested and overlapping: (0, 1) U (0.5, 2) U (0.2, 0.4) U (3, 4) = [0, 2) U [3, 4) -> 2 + 1 = 3 s
    assert fake_overlap([(3, 4), (0.5, 2), (0, 1), (0.2, 0.4)], 0.0, 10.0) == pytest.approx(3.0)
    # the same clipped to [1.5, 3.5): [1.5, 2) and [3, 3.5) -> 0.5 + 0.5 = 1 s
    assert fake_overlap([(3, 4), (0.5, 2), (0, 1), (0.2, 0.4)], 1.5, 3.5) == pytest.approx(1.0)
    assert fake_overlap([], 0.0, 1.0) == 0.0


def test_window_fake_segment_past_the_end_of_the_video():
    # A 3 s video has windows [0, 1), [1, 2), [2, 3); window_fake does not know the duration.
    starts = [0.0, 1.0, 2.0]
    # (2.5, 4.0) runs past the end: 0.5 s of it lies in [2, 3) -> only the last window is fake
    assert [window_fake(partial((2.5, 4.0)), s, 1.0) for s in starts] == [0, 0, 1]
    # (3.2, 3.6) lies wholly after the end: no window is fake
    assert [window_fake(partial((3.2, 3.6)), s, 1.0) for s in starts] == [0, 0, 0]
    # (2.95, 3.5): 3.0 - 2.95 = 0.05 s inside the video, and the segment is not wholly inside [2, 3): real
    assert [window_fake(partial((2.95, 3.5)), s, 1.0) for s in starts] == [0, 0, 0]


def test_window_fake_overlapping_windows():
    # windows of 1 s every 0.5 s, segment (1.45, 1.55): [0.5, 1.5) has 0.05 s and does not hold it whole;
    # [1.0, 2.0) holds it whole; [1.5, 2.5) has 0.05 s
    rec = partial((1.45, 1.55))
    assert [window_fake(rec, s, 1.0) for s in (0.5, 1.0, 1.5)] == [0, 1, 0]


def test_window_fake_non_partial_videos_keep_their_label():
    # no fake_segments: the window takes the video's label, whatever the window
    assert window_fake(VideoRecord("f.mp4", label="fake"), 100.0, 1.0) == 1
    assert window_fake(VideoRecord("r.mp4", label="real"), 0.0, 1.0) == 0
    assert window_fake(VideoRecord("u.mp4"), 0.0, 1.0) == UNKNOWN


# ---------------------------------------------------------------------------------------------------------
# 2. The relabelling in pipeline._parse, and the targets and weights make_dataset yields
# ---------------------------------------------------------------------------------------------------------

def _window(index: int, start: float):
    from dfdetect.windows import Window

    T, C, S = CFG.frames_per_window, CFG.faces.crop_size, CFG.samples_per_window
    return Window(index=index, start=start, frames=np.full((T, C, C, 3), 40 * index, np.uint8),
                  mask=np.ones(T, np.uint8), audio=np.zeros(S, np.float32), mouth=np.full((T, 2), -1.0, np.float32),
                  audio_ratio=1.0, first_frame=int(round(start * CFG.media.fps)))


def _write_data(folder: Path, videos: list[tuple[VideoRecord, list[float]]]) -> Path:
    """A preprocessed folder as ``dfdetect preprocess`` lays it out: ``shards/*.tfrecord`` + ``windows.csv``."""
    import tensorflow as tf

    from dfdetect.preprocess import WINDOW_COLUMNS
    from dfdetect.shards import serialize_window

    (folder / "shards").mkdir(parents=True)
    rows = []
    with tf.io.TFRecordWriter(str(folder / "shards" / "shard-00000.tfrecord")) as writer:
        for rec, starts in videos:
            vid = Path(rec.path).stem
            for i, s in enumerate(starts):
                writer.write(serialize_window(_window(i, s), rec, vid, CFG.window.seconds))
                rows.append({"video_id": vid, "path": rec.path, "index": i, "start": s, "face_ratio": 1.0,
                             "audio_ratio": 1.0, "window_fake": window_fake(rec, s, CFG.window.seconds),
                             "shard": "shards/shard-00000.tfrecord", "label": rec.label, "group": vid,
                             "category": rec.category, "split": rec.split})
    pd.DataFrame(rows, columns=WINDOW_COLUMNS).to_csv(folder / "windows.csv", index=False)
    return folder


# The partial fake: segment (1.25, 2.001); windows [0, 1) 0 s, [1, 2) 2.0 - 1.25 = 0.75 s, [2, 3) 0.001 s.
PARTIAL = partial((1.25, 2.001), path="partial.mp4")
# A whole fake (no segments) with a fake voice, av_mismatch unknown: its windows keep the video labels.
WHOLE = VideoRecord("whole.mp4", label="fake", video_fake=0, audio_fake=1, av_mismatch=UNKNOWN, split="test",
                    category="B", method="vocoder")
# A binary-only real (DFDC-like): the per-modality labels are unknown.
BINARY = VideoRecord("binary.mp4", label="real", split="test", category="A", method="real")
VIDEOS = [(PARTIAL, [0.0, 1.0, 2.0]), (WHOLE, [0.0, 1.0]), (BINARY, [0.0])]

# (fake, video_fake, audio_fake, av_mismatch) per (path, start), -1 = unknown
EXPECTED = {
    # outside the segment: real in every head, av_mismatch included (outside its fake segments the window is
    # original footage in both modalities, so 0 is known there even though the video's label is unknown)
    ("partial.mp4", 0.0): (0, 0, 0, 0),
    # inside: the video's own per-modality labels (video 1, audio 0, av_mismatch unknown)
    ("partial.mp4", 1.0): (1, 1, 0, -1),
    # touched for 1 ms only: outside
    ("partial.mp4", 2.0): (0, 0, 0, 0),
    ("whole.mp4", 0.0): (1, 0, 1, -1),
    ("whole.mp4", 1.0): (1, 0, 1, -1),
    ("binary.mp4", 0.0): (0, -1, -1, -1),
}


def test_serialized_window_label_is_window_fake():
    from dfdetect.shards import decode_example, serialize_window

    for rec, starts in VIDEOS:
        for i, s in enumerate(starts):
            ex = decode_example(serialize_window(_window(i, s), rec, "v", CFG.window.seconds))
            assert ex["window_fake"] == EXPECTED[(rec.path, s)][0]
            assert (ex["fake"], ex["video_fake"], ex["audio_fake"], ex["av_mismatch"]) == (
                rec.fake, rec.video_fake, rec.audio_fake, rec.av_mismatch)


def test_parse_relabels_windows_of_partial_fakes():
    import tensorflow as tf

    from dfdetect.pipeline import _parse
    from dfdetect.shards import serialize_window

    for rec, starts in VIDEOS:
        for i, s in enumerate(starts):
            inputs, labels, meta = _parse(CFG, tf.constant(serialize_window(_window(i, s), rec, "v", 1.0)))
            got = tuple(int(labels[h]) for h in HEADS)
            assert got == EXPECTED[(rec.path, s)], (rec.path, s)
            assert float(meta["start"]) == s and inputs["frames"].shape == (12, 64, 64, 3)


def test_make_dataset_targets_and_weights(tmp_path):
    from dfdetect.pipeline import class_weights, make_dataset

    data = _write_data(tmp_path / "data", VIDEOS)
    got = {}
    for _inputs, targets, weights, meta in make_dataset(data, CFG, "test", training=False, batch_size=4,
                                                        with_meta=True):
        for i in range(len(meta["path"])):
            key = (meta["path"][i].numpy().decode(), float(meta["start"][i]))
            got[key] = ({h: float(targets[h][i][0]) for h in HEADS}, {h: float(weights[h][i]) for h in HEADS})
    assert set(got) == set(EXPECTED)
    for key, labels in EXPECTED.items():
        targets, weights = got[key]
        for h, y in zip(HEADS, labels):
            # an unknown label trains nothing: target 0, weight 0; a known one has its head's weight
            # (training=False: no class balance) -- fake 1.0, the other heads 0.5 in the smoke preset
            assert targets[h] == max(y, 0), (key, h)
            assert weights[h] == (0.0 if y < 0 else HEAD_WEIGHT[h]), (key, h)
    # windows.csv's window_fake: real 0,0 (partial) + 0 (binary) = 3, fake 1 (partial) + 2 (whole) = 3;
    # equal totals -> weights 6 / (2 * 3) = 1 for both classes
    assert class_weights(data, "test", get_config("smoke").override(train={"sync_negatives": 0.0})) == (1.0, 1.0)


# ---------------------------------------------------------------------------------------------------------
# 2b. frame_labels: one label per step (video frame) and modality
# ---------------------------------------------------------------------------------------------------------

def test_frame_labels_by_frame_centre():
    # 10 fps, a window of 8 steps starting at frame 10 (1.0 s): step j is frame 10 + j, centre (10 + j + 0.5) / 10
    # = 1.05, 1.15, ..., 1.75 s. Segment [1.2, 1.46): centres 1.25, 1.35, 1.45 inside -> steps 2, 3, 4.
    rec = partial((1.2, 1.46))
    got = frame_labels(rec, 10, 8, 10.0)
    assert got.tolist() == [[0, 0, 1, 1, 1, 0, 0, 0],   # any
                            [0, 0, 1, 1, 1, 0, 0, 0],   # video: modify_video, the same segments
                            [0, 0, 0, 0, 0, 0, 0, 0]]   # audio: a real voice
    # a segment shorter than half a frame that holds no frame centre marks nothing; one that does, one step
    assert frame_labels(partial((1.21, 1.24)), 10, 8, 10.0)[0].tolist() == [0] * 8
    assert frame_labels(partial((1.24, 1.27)), 10, 8, 10.0)[0].tolist() == [0, 0, 1, 0, 0, 0, 0, 0]
    # two segments, one of them past the window's end
    assert frame_labels(partial((1.0, 1.1), (1.7, 3.0)), 10, 8, 10.0)[0].tolist() == [1, 0, 0, 0, 0, 0, 0, 1]


def test_frame_labels_whole_fakes_unknowns_and_separate_modalities():
    # a wholly fake clip (no segments) is fake at every step in each modality labelled fake
    whole = VideoRecord("w.mp4", label="fake", video_fake=0, audio_fake=1)
    assert frame_labels(whole, 0, 3, 10.0).tolist() == [[1, 1, 1], [0, 0, 0], [1, 1, 1]]
    # unknown labels (a binary-only dataset) stay unknown per step: no weight for those heads
    binary = VideoRecord("b.mp4", label="fake")
    assert frame_labels(binary, 0, 2, 10.0).tolist() == [[1, 1], [UNKNOWN] * 2, [UNKNOWN] * 2]
    assert frame_labels(VideoRecord("u.mp4"), 0, 2, 10.0).tolist() == [[UNKNOWN] * 2] * 3
    # AV-Deepfake1M gives each modality its own segments: the face [0, 0.2), the voice [0.3, 0.5)
    both = VideoRecord("m.mp4", label="fake", video_fake=1, audio_fake=1, fake_segments=((0.0, 0.2), (0.3, 0.5)),
                       video_segments=((0.0, 0.2),), audio_segments=((0.3, 0.5),))
    assert frame_labels(both, 0, 6, 10.0).tolist() == [[1, 1, 0, 1, 1, 0], [1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 0]]
    # a real clip is real everywhere
    assert frame_labels(VideoRecord("r.mp4", label="real", video_fake=0, audio_fake=0), 5, 2, 10.0).tolist() == \
        [[0, 0]] * 3


# ---------------------------------------------------------------------------------------------------------
# 3. Segments, the confident-windows rule, AUC per category, per-video scores
# ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scores, expected", [
    # 10 windows, 1 above 0.8: 1 > 0.11 * 10 = 1.1 fails; 9 below 0.2: 9 > 0.9 * 10 = 9 fails (strict)
    # -> plain mean (0.9 + 9 * 0.1) / 10 = 0.18
    ([0.9] + [0.1] * 9, 0.18),
    # 9 windows, 1 above 0.8: 1 > 0.11 * 9 = 0.99 -> mean of the confident fakes = 0.9
    ([0.9] + [0.1] * 8, 0.9),
    # 10 windows, 2 above 0.8 (0.9, 0.85; not 0.7): 2 > 1.1 -> the mean of those two (0.9 + 0.85) / 2
    ([0.9, 0.85, 0.7] + [0.1] * 7, 0.875),
    # hi is strict: 0.8 is not above 0.8 -> no fakes; 8 below 0.2 is not > 9 -> (0.8 + 0.8 + 0.8) / 10
    ([0.8, 0.8] + [0.1] * 8, 0.24),
    # 11 windows, 10 below 0.2: 10 > 0.9 * 11 = 9.9 -> mean of those 10 = 0.1 (the 0.7 left out;
    # the plain mean would be 1.7 / 11 = 0.1545)
    ([0.1] * 10 + [0.7], 0.1),
    # lo is strict: 0.2 is not below 0.2 -> 10 of 11 below; 0.2 left out of the mean -> 0.1
    ([0.1] * 10 + [0.2], 0.1),
    # 9 of 11 below 0.2: 9 > 9.9 fails -> plain mean (0.9 + 0.4) / 11 = 1.3 / 11
    ([0.1] * 9 + [0.2, 0.2], 1.3 / 11),
    # all below: the mean of all = 0.05
    ([0.05] * 4, 0.05),
    # one window: 0.5 is neither -> 0.5; 0.95 -> 1 > 0.11 -> 0.95
    ([0.5], 0.5),
    ([0.95], 0.95),
])
def test_confident_mean(scores, expected):
    assert confident_mean(np.array(scores)) == pytest.approx(expected)


def test_confident_mean_parameters_and_edges():
    assert math.isnan(confident_mean(np.array([])))
    # hi 0.5, lo 0.4: 2 of 4 above 0.5; 2 > 0.5 * 4 = 2 fails; 2 below 0.4 is not > 3.6 -> mean 0.45
    assert confident_mean([0.6, 0.6, 0.3, 0.3], hi=0.5, lo=0.4, frac=0.5) == pytest.approx(0.45)
    # frac 0.49: 2 > 1.96 -> mean of the fakes 0.6
    assert confident_mean([0.6, 0.6, 0.3, 0.3], hi=0.5, lo=0.4, frac=0.49) == pytest.approx(0.6)
    # both rules hold (6 > 0.05 * 100 = 5 fakes, 94 > 90 reals): the fake rule is checked first -> 0.9
    assert confident_mean([0.9] * 6 + [0.1] * 94, frac=0.05) == pytest.approx(0.9)


def test_auc_by_category():
    rows = [  # (category, method, label, score)
        ("A", "real", 0, 0.3), ("A", "real", 0, 0.5),
        # B: 0.9, 0.8 above both reals: 4 of 4 pairs -> 1.0
        ("B", "vocoder", 1, 0.9), ("B", "vocoder", 1, 0.8),
        # C (face swap): 0.1, 0.2 below both reals: 0 of 4 -> 0.0
        ("C", "faceswap", 1, 0.1), ("C", "faceswap", 1, 0.2),
        # D: 0.4 beats 0.3, loses to 0.5: 1 of 2 -> 0.5
        ("D", "faceswap-vocoder", 1, 0.4),
        # lip-sync fakes are reported apart from C: 0.4 > 0.3, 0.4 < 0.5, 0.6 > 0.3, 0.6 > 0.5 -> 3 / 4 = 0.75
        ("C", "lipsync", 1, 0.4), ("C", "lipsync", 1, 0.6),
        # partial fakes likewise: 0.5 > 0.3 (1), 0.5 = 0.5 (a tie counts 1/2) -> 1.5 / 2 = 0.75
        ("C", "partial-video", 1, 0.5),
        # an unknown label is in no group and not in "all"
        ("", "", -1, 0.99),
    ]
    v = pd.DataFrame(rows, columns=["category", "method", "fake_label", "fake_score"])
    got = auc_by_category(v)
    # all: 8 fakes x 2 reals = 16 pairs. Against 0.3: all but 0.1, 0.2 win -> 6. Against 0.5: 0.9, 0.8, 0.6
    # win, 0.5 ties -> 3.5. (6 + 3.5) / 16 = 0.59375
    assert got == pytest.approx({"all": 0.59375, "B": 1.0, "C": 0.0, "D": 0.5, "C-lipsync": 0.75,
                                 "partial": 0.75})


def _window_rows(path: str, category: str, method: str, labels: dict[str, list[int]],
                 fake_scores: list[float]) -> list[dict]:
    rows = []
    for i, s in enumerate(fake_scores):
        row = {"path": path, "start": float(i), "category": category, "method": method, "dataset": "LAV-DF"}
        for h in HEADS:
            row[f"{h}_label"] = labels[h][i]
            row[f"{h}_score"] = s if h == "fake" else 0.5
        rows.append(row)
    return rows


def test_video_scores():
    # b.mp4 listed first: the output is sorted by path
    w = pd.DataFrame(
        _window_rows("b.mp4", "A", "real", {"fake": [0, 0], "video_fake": [-1, -1], "audio_fake": [-1, -1],
                                            "av_mismatch": [-1, -1]}, [0.1, 0.3])
        + _window_rows("a.mp4", "C", "partial-video",
                       {"fake": [0, 1, 0], "video_fake": [0, 1, 0], "audio_fake": [0, 0, 0],
                        "av_mismatch": [0, -1, 0]}, [0.1, 0.9, 0.2]))
    v = video_scores(w).set_index("path")
    assert list(v.index) == ["a.mp4", "b.mp4"]
    a, b = v.loc["a.mp4"], v.loc["b.mp4"]
    # a: labels are the max over known windows: fake 1, video 1, audio 0, av_mismatch max(0, 0) = 0
    assert (a["fake_label"], a["video_fake_label"], a["audio_fake_label"], a["av_mismatch_label"]) == (1, 1, 0, 0)
    assert a["windows"] == 3 and a["category"] == "C" and a["method"] == "partial-video"
    # mean (0.1 + 0.9 + 0.2) / 3 = 0.4; max 0.9; confident: 1 of 3 above 0.8 > 0.33 -> 0.9
    assert a["fake_score"] == pytest.approx(0.4)
    assert a["fake_score_max"] == pytest.approx(0.9)
    assert a["fake_score_confident"] == pytest.approx(0.9)
    # b: fake 0, the rest unknown; mean (0.1 + 0.3) / 2 = 0.2, max 0.3; confident: 1 of 2 below 0.2 is not
    # > 1.8 -> the plain mean 0.2
    assert (b["fake_label"], b["video_fake_label"], b["audio_fake_label"], b["av_mismatch_label"]) == (
        0, -1, -1, -1)
    assert b["windows"] == 2
    assert (b["fake_score"], b["fake_score_max"], b["fake_score_confident"]) == pytest.approx((0.2, 0.3, 0.2))
    assert b["video_fake_score"] == pytest.approx(0.5)


class _ConstantModel:
    """Scores every window 0.5 in every head (the scores do not matter here, only the labels)."""

    def predict_on_batch(self, inputs):
        n = len(inputs["frames"])
        return {h: np.full((n, 1), 0.5, np.float32) for h in HEADS}


def test_partial_fake_with_no_fake_window_is_still_a_fake_video(tmp_path):
    from dfdetect.evaluate import window_scores

    # Segment (0.2, 0.6) inside 1.0 s of leading silence that preprocessing trimmed: windows start at 1.0
    # and 2.0, each with 0 s of fake -> window_fake 0 for both; the video's own label still makes it fake.
    rec = partial((0.2, 0.6), path="silent_start.mp4")
    data = _write_data(tmp_path / "data", [(rec, [1.0, 2.0])])
    v = video_scores(window_scores(_ConstantModel(), data, CFG, "test"))
    assert v.loc[0, "fake_label"] == 1


# ---------------------------------------------------------------------------------------------------------
# 4. predict: segments and timeline
# ---------------------------------------------------------------------------------------------------------

def test_segments_from_a_frame_track():
    from dfdetect.predict import track_segments

    # 10 fps: frames 5-7 at 0.9, frame 8 dips to 0.2 (a one-frame gap, bridged), frames 9-10 at 0.8
    fake = [0.1] * 5 + [0.9] * 3 + [0.2] + [0.8] * 2 + [0.1] * 9
    video = [0.1] * 5 + [0.7] * 6 + [0.1] * 9
    audio = [0.1] * 20
    track = {"fps": 10.0, "fake": fake, "video": video, "audio": audio}
    # one segment over frames 5..10 = [0.5, 1.1) s; mean (3 * 0.9 + 0.2 + 2 * 0.8) / 6 = 4.5 / 6 = 0.75; the
    # video track inside is 0.7 >= 0.5 and the audio 0.1: the face was faked
    assert track_segments(track) == [{"start": 0.5, "end": 1.1, "score": 0.75, "modality": "video"}]
    assert track_segments(track, threshold=0.95) == []
    # a fake running to the end is clipped to the duration (1.95 s, shorter than 20 frames' 2.0 s); neither
    # modality alone is fake inside it: the face and the voice disagree ("sync")
    tail = {"fps": 10.0, "fake": [0.1] * 15 + [0.6] * 5, "video": [0.1] * 20, "audio": [0.3] * 20}
    assert track_segments(tail, duration=1.95) == [{"start": 1.5, "end": 1.95, "score": 0.6, "modality": "sync"}]
    assert track_segments({"fps": 10.0, "fake": [], "video": [], "audio": []}) == []


class _ScoreByOrder:
    """Stands in for the neural network: the i-th window the detector scores gets ``SCORES[i]`` from the window
    heads and ``FRAMES[i]`` from the frame heads. The test is about how scores become a timeline, a per-frame
    track, segments and a verdict, not about the model; this makes every score known exactly. Windows reach
    the model in time order (``extract_windows`` yields them in order), so the call order says which window
    each row is."""

    # binary fractions: exact in float32, so no score sits a rounding error away from a threshold
    SCORES = [0.875, 0.25, 0.625, 0.75]
    LO, HI = 0.125, 0.875
    # (frame_fake, frame_video, frame_audio) steps per window, 12 steps each
    FRAMES = [
        ([LO] * 6 + [HI] * 6, [LO] * 6 + [HI] * 6, [LO] * 12),          # frames 12..17 fake: the face
        ([HI] * 3 + [LO] * 9, [HI] * 3 + [LO] * 9, [LO] * 12),          # frames 18..20 fake: the face
        ([LO] * 12, [LO] * 12, [LO] * 12),
        ([LO] * 4 + [HI] * 4 + [LO] * 4, [LO] * 12, [LO] * 4 + [HI] * 4 + [LO] * 4),  # 46..49: the voice
    ]

    def __init__(self) -> None:
        self.seen = 0
        self.batches: list[int] = []

    def predict_on_batch(self, inputs):
        n = len(inputs["frames"])
        assert inputs["frames"].shape[1:] == (12, 64, 64, 3) and inputs["audio"].shape == (n, 16000)
        s = np.array(self.SCORES[self.seen:self.seen + n], np.float32)[:, None]
        f = np.array(self.FRAMES[self.seen:self.seen + n], np.float32)[..., None]  # (n, 3, 12, 1)
        self.seen += n
        self.batches.append(n)
        return {"fake": s, "video_fake": 1 - s, "audio_fake": s / 2, "av_mismatch": np.full_like(s, 0.5),
                "frame_fake": f[:, 0], "frame_video": f[:, 1], "frame_audio": f[:, 2]}


def test_predict_video_segments_and_timeline(tmp_path):
    from dfdetect.faces import FaceDetector
    from dfdetect.model import input_names
    from dfdetect.predict import Detector
    from dfdetect.sample_media import talking_clip

    # 5 s clip whose voice starts at 0.55 s. Leading silence ends in the 20 ms block at 0.54 s; at 12 fps the
    # first window starts at frame floor(0.54 * 12) = 6, i.e. 0.5 s (any onset in [0.5, 0.583) gives the
    # same). 60 frames (0..59), 12 per window, hop 12: windows at frames 6, 18, 30, 42 = 0.5, 1.5, 2.5, 3.5 s;
    # the next (54..65) is incomplete and dropped, and so is the window ending at the last frame (cover_end off
    # here: windows that do not overlap make every frame's score one window's step).
    clip = talking_clip(tmp_path / "clip.mp4", seconds=5.0, lead_silence=0.55)
    det = Detector.__new__(Detector)  # no exported model to load: the network is replaced (see _ScoreByOrder)
    cfg = CFG.override(window={"cover_end": False})
    det.model, det.fmt, det.config, det.threshold, det.batch_size = _ScoreByOrder(), "keras", cfg, 0.5, 3
    det.temperature, det.abstain, det.reference, det.notice = 1.0, True, None, ""  # no familiarity statistics
    det.input_names = input_names(cfg)  # what a model built from this config takes
    det.faces = FaceDetector(CFG.faces)  # real face detection and real decoding
    try:
        v = det.predict_video(clip)
    finally:
        det.close()
    assert v.status == "ok", v.reason
    assert det.model.batches == [3, 1]  # batches of 3, the last one flushed at the end
    assert v.windows == 4
    # timeline: scores 0.875, 0.25, 0.625, 0.75; video_fake = 1 - s; audio_fake = s / 2
    assert v.timeline == [
        {"start": 0.5, "end": 1.5, "fake": 0.875, "video_fake": 0.125, "audio_fake": 0.4375, "av_mismatch": 0.5},
        {"start": 1.5, "end": 2.5, "fake": 0.25, "video_fake": 0.75, "audio_fake": 0.125, "av_mismatch": 0.5},
        {"start": 2.5, "end": 3.5, "fake": 0.625, "video_fake": 0.375, "audio_fake": 0.3125, "av_mismatch": 0.5},
        {"start": 3.5, "end": 4.5, "fake": 0.75, "video_fake": 0.25, "audio_fake": 0.375, "av_mismatch": 0.5},
    ]
    # the per-frame track: 60 frames (5 s at 12 fps); frames 0..5 (trimmed silence) and 54..59 (after the last
    # window) are scored by no window and take the nearest scored frame's value (0.125)
    assert v.track["fps"] == 12.0 and len(v.track["fake"]) == 60
    hi = [k for k, x in enumerate(v.track["fake"]) if x > 0.5]
    assert hi == [*range(12, 21), *range(46, 50)]
    # segments at frame resolution: frames 12..20 = [1.0, 1.75) s, the face; frames 46..49 = [3.833, 4.167) s,
    # the voice
    assert v.segments == [{"start": 1.0, "end": 1.75, "score": 0.875, "modality": "video"},
                          {"start": 3.833, "end": 4.167, "score": 0.875, "modality": "audio"}]
    # mean (0.875 + 0.25 + 0.625 + 0.75) / 4 = 2.5 / 4 = 0.625 >= 0.5 -> fake; confident: only 0.875 > 0.8,
    # 1 > 0.11 * 4 = 0.44 -> 0.875
    assert (v.score, v.label, v.score_confident) == (0.625, "fake", 0.875)
    # video_fake mean (0.125 + 0.75 + 0.375 + 0.25) / 4 = 0.375; audio_fake 0.625 / 2 = 0.3125
    assert (v.video_fake, v.audio_fake, v.av_mismatch) == (0.375, 0.3125, 0.5)
    assert v.has_audio and v.face_ratio > 0.5
    assert "0.50 s of leading silence skipped" in v.reason


def test_a_clip_shorter_than_a_window_is_scored_and_its_segments_end_with_it(tmp_path):
    from dfdetect.faces import FaceDetector
    from dfdetect.model import input_names
    from dfdetect.predict import Detector
    from dfdetect.sample_media import talking_clip

    # 0.75 s asked for at 25 fps encodes 18 frames: the video ends at 0.72 s. At 12 fps that is 9 frames
    # (ceil(0.72 * 12)): one window of 12 steps, padded after frame 8. The model calls every step fake; the
    # track has the clip's 9 frames only, and the one segment ends where the video does, at 0.72 s.
    clip = talking_clip(tmp_path / "short.mp4", seconds=0.75, lead_silence=0.0)
    model = _ScoreByOrder()
    model.FRAMES = [([model.HI] * 12, [model.LO] * 12, [model.HI] * 12)]
    det = Detector.__new__(Detector)
    cfg = CFG.override(window={"trim_leading_silence": False})
    det.model, det.fmt, det.config, det.threshold, det.batch_size = model, "keras", cfg, 0.5, 3
    det.temperature, det.abstain, det.reference, det.notice = 1.0, True, None, ""
    det.input_names = input_names(cfg)
    det.faces = FaceDetector(CFG.faces)
    try:
        v = det.predict_video(clip)
    finally:
        det.close()
    assert v.status == "ok" and v.windows == 1, v.reason
    assert len(v.track["fake"]) == 9
    assert v.segments == [{"start": 0.0, "end": 0.72, "score": 0.875, "modality": "audio"}]


def test_boundary_steps_mark_the_steps_around_a_change_of_label():
    from dfdetect.pipeline import boundary_steps

    # labels 0 0 0 1 1 1 1 1 1 1 0 0: changes between steps 2|3 and 9|10; two steps each way of each edge step
    # -> 0..5 and 7..11 (the first change marks 2 and 3, widened to 0..5; the second 9 and 10, to 7..12)
    y = [0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0]
    assert boundary_steps(np.array(y), 2).numpy().tolist() == [1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1]
    assert boundary_steps(np.array(y), 0).numpy().tolist() == [0, 0, 1, 1, 0, 0, 0, 0, 0, 1, 1, 0]
    # an unknown step is no boundary: only the 0|1 change between steps 3 and 4 counts
    assert boundary_steps(np.array([-1, -1, 0, 0, 1]), 0).numpy().tolist() == [0, 0, 0, 1, 1]
    assert boundary_steps(np.array([1, 1, 1]), 2).numpy().tolist() == [0, 0, 0]
