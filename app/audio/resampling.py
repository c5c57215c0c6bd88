"""Resampling float32 ``(channels, frames)`` audio with FFmpeg's swr (through PyAV).

``resample`` does a whole array at once, ``StreamResampler`` the same block by block (for audio too
long to hold at once); both are time-aligned with their input and give exactly
``round(frames * to_rate / from_rate)`` frames.
"""

from __future__ import annotations

import av
import numpy as np


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample float32 ``(channels, frames)`` from ``from_rate`` to ``to_rate`` Hz (FFmpeg swr).

    The result is time-aligned with the input (no filter delay) and has exactly
    ``round(frames * to_rate / from_rate)`` frames.
    """
    if from_rate == to_rate:
        return samples.astype(np.float32, copy=False)
    resampler = StreamResampler(samples.shape[0], from_rate, to_rate)
    return np.concatenate([resampler.push(samples), resampler.finish()], axis=1)


class StreamResampler:
    """``resample`` block by block: feed blocks with ``push``, then ``finish``; the concatenated
    output is what ``resample`` returns for the concatenated input (same samples, same length).

    FFmpeg holds back a few samples per call, so a block out may be shorter than the block in;
    ``finish`` returns the rest, padded or cut to ``round(total_in * to_rate / from_rate)`` in all.
    """

    def __init__(self, channels: int, from_rate: int, to_rate: int) -> None:
        self.channels, self.from_rate, self.to_rate = channels, from_rate, to_rate
        self.frames_in = self.frames_out = 0
        # one mono pass per channel: any channel count works, and no layout mixing happens
        self._swr = [av.AudioResampler(format="fltp", layout="mono", rate=to_rate) for _ in range(channels)]

    def push(self, block: np.ndarray) -> np.ndarray:
        """Resample the next ``(channels, n)`` block; returns what FFmpeg let out so far."""
        self.frames_in += block.shape[1]
        if self.from_rate == self.to_rate:
            return self._count(block.astype(np.float32, copy=False))
        if block.shape[1] == 0:
            return np.zeros((self.channels, 0), np.float32)
        outs = []
        for channel, swr in zip(block, self._swr, strict=True):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(channel[None, :], np.float32),
                                               format="fltp", layout="mono")
            frame.sample_rate = self.from_rate
            outs.append(_frames_array(swr.resample(frame)))
        return self._count(_stack(outs))

    def finish(self) -> np.ndarray:
        """Flush FFmpeg and return the last samples, so the total is exactly the target length."""
        target = round(self.frames_in * self.to_rate / self.from_rate)
        tail = (_stack([_frames_array(swr.resample(None)) for swr in self._swr])
                if self.from_rate != self.to_rate and self.frames_in else np.zeros((self.channels, 0), np.float32))
        want = target - self.frames_out
        tail = tail[:, :max(want, 0)]
        if tail.shape[1] < want:
            tail = np.pad(tail, ((0, 0), (0, want - tail.shape[1])))
        return self._count(tail)

    def _count(self, out: np.ndarray) -> np.ndarray:
        self.frames_out += out.shape[1]
        return out


def _frames_array(frames: list[av.AudioFrame]) -> np.ndarray:
    return np.concatenate([f.to_ndarray()[0] for f in frames]) if frames else np.zeros(0, np.float32)


def _stack(channels: list[np.ndarray]) -> np.ndarray:
    n = min(len(c) for c in channels)  # equal in practice: every channel's resampler saw the same input
    return np.stack([c[:n] for c in channels]).astype(np.float32, copy=False)
