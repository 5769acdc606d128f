"""What an exported model takes and returns, without importing Keras: the names ``predict`` and ``export`` need.

``dfdetect.model`` builds the network (and imports Keras); a process that only scores videos with the
``.tflite`` copy must not pay for that import, so the head names and the input dict live here.
"""

from __future__ import annotations

import numpy as np

HEADS = ("fake", "video_fake", "audio_fake", "av_mismatch")
FRAME_HEADS = ("frame_fake", "frame_video", "frame_audio")  # rows of dfdetect.shards.FRAME_MODALITIES


def model_inputs(names, frames, audio, mask, mouth=None) -> dict:
    """The input dict for a model taking ``names`` (``model.input`` keys or a signature's): a missing mouth
    track is "unknown" (-1) in every step, which ``MouthCrop`` reads as the fixed region."""
    values = {"frames": frames, "audio": audio, "mask": mask}
    if "mouth" in names:
        values["mouth"] = mouth if mouth is not None else np.full((*np.shape(mask), 2), -1.0, np.float32)
    return {k: values[k] for k in names}
