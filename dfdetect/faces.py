"""Face detection (MediaPipe Tasks ``FaceDetector``), tracking between detections, and square crops.

``FaceTracker`` is streaming: push frames in order, get crops back a few frames later. It runs the detector
on every ``detect_every``-th frame and, between two detections of the same face, interpolates the box (a
keyframe tracker: exact at keyframes, smooth between them, no drift). Where a face appears or vanishes between
keyframes, the frames in between are detected one by one so the mask is exact. Boxes are smoothed with an
exponential filter so crops do not jitter. When several faces are present, the dominant one (largest, most
confident) is chosen once and then followed by overlap, so the crop never jumps between people.

``MultiFaceTracker`` follows every face (DFDC clips often show two people of whom one is swapped): the dominant
face's track is exactly ``FaceTracker``'s (what preprocessing writes), and each further face a whole-frame scan
finds gets a track of its own, locked on that face, which ends when the face is lost. All tracks share one
detector and each frame's whole-frame scan.

A new face must be confirmed (``FaceDetector.detect``): what the whole-frame scan finds is looked at three more
times, zoomed in, mirrored and wider, and kept only if the mean score of the four looks reaches
``FaceConfig.confirm_confidence``. On one look BlazeFace scores clouds, letters, foliage and the back of a head
0.5-0.79: a title card over an animated sky (``sample_media.faceless_clip``) had a "face" in 40% of its frames,
which the tracker then followed from keyframe to keyframe. Real faces score high on every look.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from dfdetect.config import FaceConfig
from dfdetect.model_files import model_path
from dfdetect.quiet import native_logs_filtered, quiet_env

# MediaPipe's C++ logging goes to stderr; keep it to warnings and up unless the user asked otherwise.
quiet_env()


# Modules MediaPipe Tasks imports on its own and face detection never uses: the drawing helpers (they import
# matplotlib.pyplot, 0.5 s). (Its audio recorder's sounddevice import, 0.05-0.1 s, cannot be deferred: the audio
# classifier reads ``audio_record.AudioRecord`` in an annotation as it is defined.)
_DRAWING = ("mediapipe.tasks.python.vision.drawing_utils", "mediapipe.tasks.python.vision.drawing_styles")


class _LazyDrawing(importlib.abc.MetaPathFinder):
    """Finds ``_DRAWING`` as usual but loads them with ``importlib.util.LazyLoader``: the real modules, run on
    their first attribute access (never, in a process that only detects faces)."""

    def find_spec(self, name, path, target=None):
        if name not in _DRAWING:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = importlib.util.LazyLoader(spec.loader)
        return spec


def _import_mediapipe_lightly() -> None:
    """Imports MediaPipe Tasks without TensorFlow (4-6 s of ``dfdetect predict``'s start) and matplotlib.

    MediaPipe Tasks imports TensorFlow for one thing, a decorator for its API docs
    (``mediapipe.tasks.python.core.optional_dependencies``: ``from tensorflow.tools.docs import doc_controls``),
    and falls back on a no-op when TensorFlow is not installed: this installs that very fallback unless
    TensorFlow is already loaded (then the real one costs nothing). Nothing of TensorFlow is stood in for.
    Its drawing helpers load lazily (``_LazyDrawing``)."""
    if "mediapipe.tasks.python.vision" in sys.modules:
        return
    name = "mediapipe.tasks.python.core.optional_dependencies"
    if name not in sys.modules and "tensorflow" not in sys.modules:
        module = types.ModuleType(name, "MediaPipe's own fallback when TensorFlow is absent (dfdetect.faces)")
        module.doc_controls = types.SimpleNamespace(do_not_generate_docs=lambda x: x)
        sys.modules[name] = module
    finder = _LazyDrawing()
    sys.meta_path.insert(0, finder)
    try:
        import mediapipe.tasks.python.vision  # noqa: F401
    finally:
        sys.meta_path.remove(finder)


@dataclass(frozen=True)
class Detection:
    """A face box in pixels ``(x0, y0, x1, y1)``, its score, and the mouth keypoint in pixels."""

    box: tuple[float, float, float, float]
    score: float
    mouth: tuple[float, float] | None = None

    @property
    def area(self) -> float:
        x0, y0, x1, y1 = self.box
        return max(0.0, x1 - x0) * max(0.0, y1 - y0)

    @property
    def center(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2


def _blank_image():
    """A small black ``mp.Image``: the detectors' first call, made while their start-up logs are filtered."""
    import mediapipe as mp

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.zeros((128, 128, 3), np.uint8))


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _cwh(box: tuple[float, float, float, float]) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0])


def _box(cwh: np.ndarray) -> tuple[float, float, float, float]:
    cx, cy, w, h = (float(v) for v in cwh)
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def _nms(dets: list[Detection], threshold: float = 0.3) -> list[Detection]:
    """Keeps the most confident of overlapping detections (from overlapping tiles)."""
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: d.score, reverse=True):
        if all(iou(d.box, k.box) < threshold for k in kept):
            kept.append(d)
    return kept


class FaceDetector:
    """MediaPipe Tasks BlazeFace detector on RGB images. Not picklable: make one per process.

    Args:
        config: ``FaceConfig`` (model, thresholds, the fallback to the full-range model).
        model_dir: a folder with the verified ``.tflite`` files (default: the model cache, fetched on demand).

    Example:
        >>> with FaceDetector(FaceConfig()) as det:          # doctest: +SKIP
        ...     faces = det.detect(rgb_image)
    """

    def __init__(self, config: FaceConfig | None = None, model_dir: str | Path | None = None) -> None:
        with native_logs_filtered():
            _import_mediapipe_lightly()
            from mediapipe.tasks.python import BaseOptions, vision

        self.config = config or FaceConfig()
        self._vision = vision
        self._detectors = {}
        names = [self.config.model]
        if self.config.fallback_full_range and self.config.model != "full":
            names.append("full")
        for name in names:
            path = Path(model_dir) / model_path(name).name if model_dir else model_path(name)
            opts = vision.FaceDetectorOptions(
                base_options=BaseOptions(model_asset_path=str(path)),
                min_detection_confidence=self.config.min_confidence,
            )
            # MediaPipe and LiteRT log their start-up from C++ (the delegate, "Sparsity tensors may not yet be
            # fully supported" per sparse layer, memory alignment), partly at the first call: one call on a
            # blank image here keeps all of it inside the filter. Detection is stateless (IMAGE mode).
            with native_logs_filtered():
                self._detectors[name] = vision.FaceDetector.create_from_options(opts)
                self._detectors[name].detect(_blank_image())
        self.calls = 0

    def _run(self, name: str, image: np.ndarray, scale: float) -> list[Detection]:
        import mediapipe as mp

        mp_image = mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(image))
        result = self._detectors[name].detect(mp_image)
        h, w = image.shape[:2]
        out = []
        for d in result.detections:
            bb = d.bounding_box
            box = (bb.origin_x / scale, bb.origin_y / scale, (bb.origin_x + bb.width) / scale,
                   (bb.origin_y + bb.height) / scale)
            mouth = None
            if d.keypoints and len(d.keypoints) > 3:  # BlazeFace keypoints: eyes, nose tip, mouth, tragions
                kp = d.keypoints[3]
                mouth = (kp.x * w / scale, kp.y * h / scale)
            out.append(Detection(box=box, score=float(d.categories[0].score), mouth=mouth))
        return out

    def _full_frame(self, image: np.ndarray, tiles: bool = True) -> list[Detection]:
        image = np.asarray(image)  # a LazyFrame converts fully here: only on full scans
        h, w = image.shape[:2]
        side = self.config.detect_side
        scale = min(1.0, side / max(h, w)) if side else 1.0
        small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA) if scale < 1.0 else image
        sh, sw = small.shape[:2]
        wide = tiles and max(sh, sw) > 1.3 * min(sh, sw)
        dets = [] if wide else self._run(self.config.model, small, scale)
        if wide:
            # BlazeFace squeezes the whole frame into 128 px: in a wide frame each face shrinks to a few
            # pixels and some are missed. Overlapping square tiles along the long side give every face more
            # pixels (and cover every face the whole frame would: each is at most a tile high).
            tile = min(sh, sw)
            n = int(np.ceil(max(sh, sw) / tile)) + 1
            starts = np.linspace(0, max(sh, sw) - tile, n).round().astype(int)
            for st in starts:
                part = small[:, st:st + tile] if sw > sh else small[st:st + tile]
                for d in self._run(self.config.model, np.ascontiguousarray(part), 1.0):
                    off = (st, 0) if sw > sh else (0, st)
                    box = (d.box[0] + off[0], d.box[1] + off[1], d.box[2] + off[0], d.box[3] + off[1])
                    mouth = (d.mouth[0] + off[0], d.mouth[1] + off[1]) if d.mouth else None
                    dets.append(Detection(box=tuple(v / scale for v in box), score=d.score,
                                          mouth=(mouth[0] / scale, mouth[1] / scale) if mouth else None))
            dets = _nms(dets)
        if not dets and "full" in self._detectors and self.config.model != "full":
            # On faceless clips this fallback found false faces of its own (every one on scrolling credits);
            # what it finds is only a candidate, confirmed by ``detect`` like any other.
            dets = self._run("full", small, scale)
        return dets

    def refine(self, image: np.ndarray, det: Detection) -> Detection | None:
        """Re-detects inside a square region around ``det``; None when the region holds no face there.
        BlazeFace sees a 128 px image, so a face that is small in a large frame gets a coarse box; in the region
        it fills a third of the input and the box becomes precise. The tracker's cheap per-keyframe search."""
        x0, y0, x1, y1 = det.box
        side = 2.5 * max(x1 - x0, y1 - y0)
        if side >= 0.8 * max(image.shape[:2]):
            # Already large in the frame: the whole frame is as good a region as any.
            found = self._full_frame(image, tiles=False)
            best = max(found, key=lambda d: iou(d.box, det.box), default=None)
            return best if best is not None and iou(best.box, det.box) > 0.1 else None
        best, best_iou = None, 0.1
        for d in self._in_region(image, det, 2.5):
            o = iou(d.box, det.box)
            if o > best_iou:
                best, best_iou = Detection(box=d.box, score=d.score, mouth=d.mouth or det.mouth), o
        return best

    def _in_region(self, image, det: Detection, margin: float, mirror: bool = False) -> list[Detection]:
        """The faces the detector finds in the square region ``margin`` x ``det``'s side around it, zoomed to
        BlazeFace's 128 px input (mirrored left-right with ``mirror``), in frame coordinates (mouths only
        when not mirrored)."""
        roi_px = 128  # BlazeFace's input size: anything larger is resized again inside MediaPipe
        crop, (rx0, ry0, rx1, ry1) = crop_square(image, det.box, roi_px, margin, fast=True)
        if mirror:
            crop = np.ascontiguousarray(crop[:, ::-1])
        s = roi_px / (rx1 - rx0)
        out = []
        for d in self._run(self.config.model, crop, 1.0):
            bx0, by0, bx1, by1 = d.box
            if mirror:
                bx0, bx1 = roi_px - bx1, roi_px - bx0
            mouth = (d.mouth[0] / s + rx0, d.mouth[1] / s + ry0) if d.mouth is not None and not mirror else None
            out.append(Detection(box=(bx0 / s + rx0, by0 / s + ry0, bx1 / s + rx0, by1 / s + ry0), score=d.score,
                                 mouth=mouth))
        return out

    def _look(self, image, det: Detection, margin: float, mirror: bool = False,
              loose: bool = False) -> Detection | None:
        """The most confident face matching ``det`` in the square region ``margin`` x its side around it
        (mirrored left-right with ``mirror``), in frame coordinates; None when there is none. A match overlaps
        ``det`` (IoU > 0.3), or with ``loose`` has its centre inside ``det`` or overlaps it a little (IoU > 0.1:
        a whole-frame box can be twice the face's size, e.g. a turned head behind a camera)."""
        best = None
        for d in self._in_region(image, det, margin, mirror):
            o = iou(d.box, det.box)
            cx, cy = d.center
            inside = det.box[0] <= cx <= det.box[2] and det.box[1] <= cy <= det.box[3]
            if (o > 0.3 or loose and (o > 0.1 or inside)) and (best is None or d.score > best.score):
                best = d
        return best

    def confirm(self, image, det: Detection) -> Detection | None:
        """``det`` (a whole-frame candidate) looked at again, or None if it is not a face. The region 2.5 x its
        side is searched zoomed in (the face then fills a 128 px input and its box is precise); around the face
        found there, the same region mirrored and a region 4 x its side are searched too. The mean score of the
        four looks (a look that misses counts 0) must reach ``confirm_confidence``. Returns the zoomed-in box
        with the mean score."""
        # Measured (whole-frame candidates of faceless clips of every sample_media kind, LFW faces and
        # non-faces, talking clips, the built-in benchmark): on the whole-frame look false candidates score up
        # to 0.79 (landscape photographs), 0.77 (clouds under a title), 0.67 (credits, via the full-range
        # fallback; a spacesuit), 0.66 (LFW non-faces), real ones from 0.50 (the turned cameraman, whose box
        # there is up to twice his face; 0.85-0.94 zoomed in). The mean of the four looks: false candidates
        # at most 0.64 except 8 of 892 (0.70-0.74, all a galaxy of the Hubble deep field); real ones 0.72 and
        # up except 2 of 100 blurry 25 px LFW faces (0.645 and 0.697).
        zoom = self._look(image, det, 2.5, loose=True)
        if zoom is None:
            return None
        mirrored = self._look(image, zoom, 2.5, mirror=True)
        wide = self._look(image, zoom, 4.0)
        score = (det.score + zoom.score + sum(d.score for d in (mirrored, wide) if d is not None)) / 4
        if score < self.config.confirm_confidence:
            return None
        return Detection(box=zoom.box, score=score, mouth=zoom.mouth or det.mouth)

    def detect(self, image: np.ndarray, refine: bool = True, max_faces: int = 4) -> list[Detection]:
        """All faces in an RGB uint8 image, in that image's pixel coordinates, best first.

        With ``refine`` (the default) the best ``max_faces`` candidates of the whole-frame scan are confirmed
        (``confirm``: three more looks, zoomed in) and those that are not faces dropped, as are candidates past
        ``max_faces``. Without it: the whole-frame candidates, unconfirmed."""
        self.calls += 1
        dets = sorted(self._full_frame(image), key=lambda d: d.area * d.score, reverse=True)
        if refine:
            # This used to refine each candidate and keep it even when the zoomed look found nothing there.
            confirmed = [c for c in (self.confirm(image, d) for d in dets[:max_faces]) if c is not None]
            # two candidates (a coarse box and a tile's) can lead to the same face: count it once
            dets = sorted(_nms(confirmed), key=lambda d: d.area * d.score, reverse=True)
        return dets

    def close(self) -> None:
        with native_logs_filtered():  # LiteRT logs "DestroyAccelerator" lines from C++
            for det in self._detectors.values():
                det.close()
        self._detectors.clear()

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def crop_square(image, box: tuple[float, float, float, float], size: int, margin: float,
                fast: bool = False) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A ``size`` x ``size`` crop centred on ``box``, side ``margin`` x its longer side, zero-padded where
    it leaves the image (an RGB array or a ``media.LazyFrame``, which converts only this region). Returns the
    crop and the square region it came from."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(x1 - x0, y1 - y0) * margin
    sx0, sy0 = cx - side / 2, cy - side / 2
    region = (sx0, sy0, sx0 + side, sy0 + side)
    h, w = image.shape[:2]
    ix0, iy0 = int(np.floor(sx0)), int(np.floor(sy0))
    iside = max(1, int(round(side)))
    canvas = np.zeros((iside, iside, 3), np.uint8)
    ax0, ay0 = max(0, ix0), max(0, iy0)
    ax1, ay1 = min(w, ix0 + iside), min(h, iy0 + iside)
    if ax1 > ax0 and ay1 > ay0:
        part = image.region(ay0, ay1, ax0, ax1) if hasattr(image, "region") else image[ay0:ay1, ax0:ax1]
        canvas[ay0 - iy0:ay1 - iy0, ax0 - ix0:ax1 - ix0] = part
    # INTER_AREA anti-aliases the stored crops; the detector's own input can take the faster bilinear.
    interp = cv2.INTER_AREA if iside > size and not fast else cv2.INTER_LINEAR
    return cv2.resize(canvas, (size, size), interpolation=interp), region


@dataclass
class FaceFrame:
    """One tracked frame: the crop (zeros where no face), whether a face was there, the box in frame
    pixels, the mouth in crop coordinates (0..1), and the number of faces the detector saw."""

    index: int
    crop: np.ndarray
    has_face: bool
    box: tuple[float, float, float, float] | None
    mouth: tuple[float, float] | None
    faces: int  # -1 on frames where the detector did not run


class FaceTracker:
    """Streaming detection + tracking + cropping. Push frames in order; crops come out in order.

    Args:
        detector: a ``FaceDetector`` (shared by all tracks of one process).
        config: ``FaceConfig``.

    Example:
        >>> tracker = FaceTracker(detector, FaceConfig())     # doctest: +SKIP
        >>> for i, img in enumerate(frames):
        ...     for ff in tracker.push(i, img): use(ff.crop, ff.has_face)
        >>> for ff in tracker.flush(): use(ff.crop, ff.has_face)
    """

    def __init__(self, detector: FaceDetector, config: FaceConfig | None = None, seed: Detection | None = None,
                 seed_index: int = 0) -> None:
        self.detector = detector
        self.config = config or detector.config
        self._buffer: list[tuple[int, np.ndarray]] = []  # frames since the last keyframe (excluded)
        self._last: tuple[int, np.ndarray, Detection | None, int] | None = None  # last keyframe
        # A seeded tracker is locked on the seed's face: it never switches to another one, and once the face is
        # lost it stays lost (``lost``) (MultiFaceTracker's further tracks; a new track picks the face up again).
        self.locked = seed is not None
        self._smoothed: Detection | None = seed
        self._velocity = np.zeros(4)  # per frame
        self._smoothed_index = seed_index
        self._keys = 0
        self.max_faces = 0
        self.frames = 0
        self.face_frames = 0
        self.track_switches = 0

    # -- choosing and smoothing ------------------------------------------------------------------------------
    def _predict(self, index: int) -> Detection | None:
        """Where the followed face should be at frame ``index`` (constant-velocity prediction)."""
        ref = self._smoothed
        if ref is None:
            return None
        dt = index - self._smoothed_index
        return Detection(box=_box(_cwh(ref.box) + self._velocity * dt), score=ref.score, mouth=ref.mouth)

    def _pick(self, dets: list[Detection], ref: Detection | None) -> tuple[Detection | None, bool]:
        """The detection continuing the track predicted at ``ref`` (and True), or the dominant face when
        there is no track or the followed face is gone (and False)."""
        if not dets or ref is None and self.locked:
            return None, False
        if ref is None:
            return dets[0], False
        best = max(dets, key=lambda d: iou(d.box, ref.box))
        if iou(best.box, ref.box) > 0.2:
            return best, True
        size = max(ref.box[2] - ref.box[0], 1.0)
        near = min(dets, key=lambda d: np.hypot(d.center[0] - ref.center[0], d.center[1] - ref.center[1]))
        if np.hypot(near.center[0] - ref.center[0], near.center[1] - ref.center[1]) < 1.5 * size:
            return near, True
        if self.locked:
            return None, False
        self.track_switches += 1
        return dets[0], False

    def _smooth(self, det: Detection | None, index: int, continued: bool) -> Detection | None:
        """Alpha-beta filter on box centre and size: removes jitter without the lag an exponential
        average has on a moving face (it predicts with the estimated per-frame velocity)."""
        a = self.config.smoothing
        prev = self._smoothed
        dt = index - self._smoothed_index
        if det is None or prev is None or not continued or dt <= 0:
            self._smoothed, self._smoothed_index = det, index
            self._velocity = np.zeros(4)
            return det
        z = _cwh(det.box)
        pred = _cwh(prev.box) + self._velocity * dt
        resid = z - pred
        alpha, beta = 1.0 - a, (1.0 - a) ** 2 / (2.0 - (1.0 - a))  # critically damped pair
        state = pred + alpha * resid
        self._velocity = self._velocity + beta * resid / dt
        mouth = det.mouth
        if mouth is not None:  # the mouth moves with the box
            mouth = (mouth[0] + state[0] - z[0], mouth[1] + state[1] - z[1])
        self._smoothed, self._smoothed_index = Detection(box=_box(state), score=det.score, mouth=mouth), index
        return self._smoothed

    def _detect(self, image, index: int, keyframe: bool = False) -> tuple[Detection | None, int, bool]:
        """The followed face in ``image``, how many faces a full scan saw (-1: no full scan), and whether it
        continues the track. While a face is followed, most keyframes only search a region around its
        predicted box (one small detector run); every ``rescan_every``-th keyframe, or when the face is
        lost there, the whole frame is scanned to count faces and catch new ones."""
        predicted = self._predict(index)
        if predicted is None and self.locked:
            return None, -1, False  # a locked track's face is gone: no scan looks for another one
        if keyframe:
            self._keys += 1
        if predicted is not None and not (keyframe and self._keys % self.config.rescan_every == 0):
            found = self.detector.refine(image, predicted)
            if found is not None:
                return found, -1, True
        dets = self.detector.detect(image)
        self.max_faces = max(self.max_faces, len(dets))
        det, continued = self._pick(dets, predicted)
        return det, len(dets), continued

    def _state(self) -> tuple:
        return self._smoothed, self._velocity.copy(), self._smoothed_index

    def _restore(self, state: tuple) -> None:
        self._smoothed, self._velocity, self._smoothed_index = state[0], state[1].copy(), state[2]

    # -- output ----------------------------------------------------------------------------------------------
    def _frame(self, index: int, image: np.ndarray, det: Detection | None, faces: int) -> FaceFrame:
        self.frames += 1
        size = self.config.crop_size
        if det is None:
            return FaceFrame(index, np.zeros((size, size, 3), np.uint8), False, None, None, faces)
        self.face_frames += 1
        crop, (rx0, ry0, rx1, ry1) = crop_square(image, det.box, size, self.config.margin)
        mouth = None
        if det.mouth is not None:
            mouth = ((det.mouth[0] - rx0) / (rx1 - rx0), (det.mouth[1] - ry0) / (ry1 - ry0))
        return FaceFrame(index, crop, True, det.box, mouth, faces)

    @staticmethod
    def _lerp(a: Detection, b: Detection, t: float) -> Detection:
        box = tuple((1 - t) * p + t * q for p, q in zip(a.box, b.box))
        mouth = None
        if a.mouth is not None and b.mouth is not None:
            mouth = ((1 - t) * a.mouth[0] + t * b.mouth[0], (1 - t) * a.mouth[1] + t * b.mouth[1])
        return Detection(box=box, score=min(a.score, b.score), mouth=mouth)

    def _resolve(self, key_index: int, key_image) -> Iterator[FaceFrame]:
        """Detects on a keyframe and emits the buffered frames before it, then the keyframe itself."""
        before = self._state()
        det, faces, continued = self._detect(key_image, key_index, keyframe=True)
        det = self._smooth(det, key_index, continued)
        prev = self._last
        between = self._buffer
        self._buffer = []
        if between:
            a = prev[2] if prev is not None else None
            if a is not None and det is not None and continued:
                span = key_index - prev[0]
                for i, img in between:
                    yield self._frame(i, img, self._lerp(a, det, (i - prev[0]) / span), -1)
            elif a is None and det is None:
                for i, img in between:
                    yield self._frame(i, img, None, -1)
            else:
                # A face appeared, vanished or changed between keyframes: look at each frame.
                after = self._state()
                self._restore(before)
                for i, img in between:
                    d, n, cont = self._detect(img, i)
                    yield self._frame(i, img, self._smooth(d, i, cont), n)
                self._restore(after)
        self._last = (key_index, key_image, det, faces)
        yield self._frame(key_index, key_image, det, faces)

    def push(self, index: int, image: np.ndarray) -> Iterator[FaceFrame]:
        """Adds frame ``index``; yields the frames whose crops are now final (in order)."""
        if self._last is None or index - self._last[0] >= self.config.detect_every:
            yield from self._resolve(index, image)
        else:
            self._buffer.append((index, image))

    def flush(self) -> Iterator[FaceFrame]:
        """Emits the frames still buffered at the end of the stream."""
        if self._buffer:
            i, img = self._buffer.pop()
            yield from self._resolve(i, img)

    @property
    def face_ratio(self) -> float:
        return self.face_frames / self.frames if self.frames else 0.0

    @property
    def lost(self) -> bool:
        """A locked tracker whose face is gone (it will find no face again), with nothing left buffered."""
        return self.locked and self._smoothed is None and not self._buffer


class _SharedScans:
    """A ``FaceDetector`` seen by several trackers: each frame's whole-frame scan (``detect``) is made once,
    however many trackers ask for it (they push the same frame object), and the scans of the frame being
    pushed are kept for ``MultiFaceTracker`` to look for new faces in."""

    def __init__(self, detector: FaceDetector) -> None:
        self.detector = detector
        self.config = detector.config
        self._scans: dict[int, tuple[object, list[Detection]]] = {}  # id(image) -> (image, faces)
        self.fresh: list[tuple[object, list[Detection]]] = []

    def detect(self, image) -> list[Detection]:
        hit = self._scans.get(id(image))
        if hit is not None and hit[0] is image:  # holding the image keeps its id from being reused
            return list(hit[1])
        dets = self.detector.detect(image)
        self._scans[id(image)] = (image, dets)
        while len(self._scans) > 32:  # a few keyframe intervals: trackers are at most that far apart
            del self._scans[next(iter(self._scans))]
        self.fresh.append((image, dets))
        return list(dets)

    def refine(self, image, det: Detection) -> Detection | None:
        return self.detector.refine(image, det)


@dataclass
class TrackStats:
    """What one face track saw: face frames, the first and last of them, and the mean box centre and size
    as fractions of the frame (to say which face a track is: ``left``, ``right``...)."""

    track: int
    face_frames: int = 0
    first: int = -1
    last: int = -1
    _sum: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def add(self, ff: FaceFrame, shape: tuple[int, int]) -> None:
        if not ff.has_face or ff.box is None:
            return
        self.face_frames += 1
        self.first = ff.index if self.first < 0 else self.first
        self.last = ff.index
        h, w = shape
        x0, y0, x1, y1 = ff.box
        cx, cy, size = self._sum
        self._sum = (cx + (x0 + x1) / 2 / w, cy + (y0 + y1) / 2 / h, size + (x1 - x0) / w)

    @property
    def center(self) -> tuple[float, float] | None:
        n = self.face_frames
        return (self._sum[0] / n, self._sum[1] / n) if n else None

    @property
    def size(self) -> float | None:
        return self._sum[2] / self.face_frames if self.face_frames else None

    @property
    def where(self) -> str:
        """Where the face mostly was: ``left``, ``centre`` or ``right`` (thirds of the frame's width), with
        ``top``/``bottom`` when it was in the upper or lower third."""
        c = self.center
        if c is None:
            return ""
        horiz = "left" if c[0] < 1 / 3 else "right" if c[0] > 2 / 3 else "centre"
        vert = "top " if c[1] < 1 / 3 else "bottom " if c[1] > 2 / 3 else ""
        return vert + horiz


class MultiFaceTracker:
    """Follows every face of a video, each in a track of its own; push frames in order, get ``(track,
    FaceFrame)`` pairs back, each track's frames in order.

    Track 0 is ``FaceTracker``'s: the dominant face, frame for frame what a single tracker gives (so the
    windows preprocessing writes for training are the ones prediction scores for that face). Whenever a
    whole-frame scan (every ``rescan_every``-th keyframe, or where a face is lost) finds a face that no track
    follows, a new track locked on it starts there, up to ``max_tracks`` at a time. A locked track ends when its
    face is lost (a face that comes back gets a new track) or when it lands on a face another track follows.

    Args:
        detector: a ``FaceDetector`` (shared by every track; each frame's whole-frame scan is made once).
        config: ``FaceConfig``.
        max_tracks: faces followed at once (1: only the dominant one, like ``FaceTracker``).

    Example:
        >>> tracker = MultiFaceTracker(detector, FaceConfig(), max_tracks=4)     # doctest: +SKIP
        >>> for i, img in enumerate(frames):
        ...     for track, ff in tracker.push(i, img): use(track, ff.crop, ff.has_face)
        >>> for track, ff in tracker.flush(): use(track, ff.crop, ff.has_face)
    """

    def __init__(self, detector: FaceDetector, config: FaceConfig | None = None, max_tracks: int = 4) -> None:
        self.config = config or detector.config
        self.max_tracks = max(1, int(max_tracks))
        self._scans = _SharedScans(detector) if self.max_tracks > 1 else detector
        self.primary = FaceTracker(self._scans, self.config)
        self.active: dict[int, FaceTracker] = {0: self.primary}
        self.stats: dict[int, TrackStats] = {0: TrackStats(0)}
        self._next = 1
        self._shape: tuple[int, int] = (1, 1)

    def _out(self, track: int, frames: Iterator[FaceFrame]) -> Iterator[tuple[int, FaceFrame]]:
        for ff in frames:
            self.stats[track].add(ff, self._shape)
            yield track, ff

    def push(self, index: int, image) -> Iterator[tuple[int, FaceFrame]]:
        """Adds frame ``index`` to every track; yields the ``(track, frame)`` pairs now final."""
        self._shape = tuple(image.shape[:2])
        if self.max_tracks == 1:
            yield from self._out(0, self.primary.push(index, image))
            return
        self._scans.fresh.clear()
        for t, tracker in list(self.active.items()):
            yield from self._out(t, tracker.push(index, image))
        yield from self._start_new(index, image)
        self._end_lost_and_doubled(index)

    def _start_new(self, index: int, image) -> Iterator[tuple[int, FaceFrame]]:
        """A track for each face this frame's whole-frame scan found that no track follows."""
        scans = [dets for img, dets in self._scans.fresh if img is image]
        for det in scans[-1] if scans else []:
            if len(self.active) >= self.max_tracks:
                return
            if any(self._follows(tr, det, index) for tr in self.active.values()):
                continue
            t, self._next = self._next, self._next + 1
            tracker = FaceTracker(self._scans, self.config, seed=det, seed_index=index)
            self.active[t], self.stats[t] = tracker, TrackStats(t)
            yield from self._out(t, tracker.push(index, image))

    @staticmethod
    def _follows(tracker: FaceTracker, det: Detection, index: int) -> bool:
        ref = tracker._predict(index)
        if ref is None:
            return False
        size = max(ref.box[2] - ref.box[0], ref.box[3] - ref.box[1], 1.0)
        dist = np.hypot(det.center[0] - ref.center[0], det.center[1] - ref.center[1])
        return iou(det.box, ref.box) > 0.2 or dist < 0.75 * size

    def _end_lost_and_doubled(self, index: int) -> None:
        for t in [t for t, tr in self.active.items() if t and tr.lost]:
            del self.active[t]
        # two tracks on one face (a locked track and the dominant one that switched to it): the younger ends
        items = sorted(self.active.items())
        for i, (t, tr) in enumerate(items):
            if t == 0 or t not in self.active or tr._smoothed is None or tr._smoothed_index != index:
                continue
            for u, other in items[:i]:
                if u in self.active and other._smoothed is not None and other._smoothed_index == index \
                        and iou(tr._smoothed.box, other._smoothed.box) > 0.5:
                    tr._buffer.clear()  # its frames since its last keyframe would duplicate the other's
                    del self.active[t]
                    break

    def flush(self) -> Iterator[tuple[int, FaceFrame]]:
        """Emits every track's frames still buffered at the end of the stream."""
        for t, tracker in list(self.active.items()):
            yield from self._out(t, tracker.flush())

    @property
    def max_faces(self) -> int:
        return self.primary.max_faces

    @property
    def open_tracks(self) -> dict[int, int]:
        """Each track still running and the index of its last frame given out (-1: none yet)."""
        return {t: tr._last[0] if tr._last is not None else -1 for t, tr in self.active.items()}
