"""Small random Demucs models saved in Demucs's local-repo format, for tests.

``make_demucs_repo(models_dir)`` writes ``<models_dir>/demucs/<sig>.th`` files (the package dict
``{"klass", "args", "kwargs", "state"}`` that ``demucs.states.load_model`` reads) and a
``<name>.yaml`` naming them, which is what ``demucs.pretrained.get_model(name, repo=...)`` loads.
The network is a real HTDemucs (frequency and time branches, a cross-transformer layer) with tiny
widths, so the production code path runs in well under a second per few seconds of audio.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import yaml

FOUR_SOURCES = ["drums", "bass", "other", "vocals"]
SIX_SOURCES = [*FOUR_SOURCES, "guitar", "piano"]
SMALL_HTDEMUCS = {
    "audio_channels": 2,
    "samplerate": 44100,
    "segment": 4,  # seconds per segment: short, so a few seconds of audio spans several segments
    "channels": 8,
    "depth": 4,
    "t_layers": 1,
    "t_heads": 2,
    "t_hidden_scale": 1.0,
}


def make_small_htdemucs(sources: list[str] | None = None, seed: int = 0) -> torch.nn.Module:
    """A randomly initialised HTDemucs with the released model's interface and tiny widths."""
    from demucs.htdemucs import HTDemucs

    torch.manual_seed(seed)
    return HTDemucs(list(sources or FOUR_SOURCES), **SMALL_HTDEMUCS).eval()


def save_demucs_model(model: torch.nn.Module, repo: Path, signature: str) -> Path:
    """Save ``model`` as ``<repo>/<signature>.th`` in the format demucs.states.load_model reads."""
    args, kwargs = model._init_args_kwargs  # recorded by demucs's @capture_init
    package = {
        "klass": model.__class__,
        "args": args,
        "kwargs": kwargs,
        "state": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
    }
    repo.mkdir(parents=True, exist_ok=True)
    path = repo / f"{signature}.th"
    torch.save(package, path)
    return path


def make_demucs_repo(
    models_dir: str | Path, name: str = "htdemucs", n_models: int = 1, seed: int = 0
) -> Path:
    """Write a small random Demucs model (or bag of ``n_models``) named ``name`` under ``models_dir``.

    Files go to ``<models_dir>/demucs`` (where ``app.audio.separation`` looks): ``n_models``
    ``<sig>.th`` files and ``<name>.yaml`` listing them; a bag gets one-hot per-source weights when
    it has one model per source (like htdemucs_ft), equal weights otherwise. ``htdemucs_6s`` gets
    six sources. Returns the repo folder.
    """
    repo = Path(models_dir) / "demucs"
    sources = SIX_SOURCES if name == "htdemucs_6s" else FOUR_SOURCES
    signatures = []
    for i in range(n_models):
        signature = hashlib.sha256(f"{name}:{i}:{seed}".encode()).hexdigest()[:8]
        save_demucs_model(make_small_htdemucs(sources, seed=seed + i), repo, signature)
        signatures.append(signature)
    bag: dict = {"models": signatures}
    if n_models == len(sources):
        bag["weights"] = [[1.0 if j == i else 0.0 for j in range(len(sources))] for i in range(n_models)]
    (repo / f"{name}.yaml").write_text(yaml.safe_dump(bag))
    return repo


class IdentityDemucs(torch.nn.Module):
    """A stand-in Demucs model whose "vocals" output is its input and other sources are silent.

    With it, ``separate`` must return the input as vocals at lag 0: a check of everything around
    the network (resampling, channel pairs, normalisation, segment overlap-add, trimming).
    """

    def __init__(self, sources: list[str], samplerate: int = 44100, segment: float = 4.0) -> None:
        super().__init__()
        self.sources = list(sources)
        self.samplerate = samplerate
        self.audio_channels = 2
        self.segment = segment
        self.gain = torch.nn.Parameter(torch.ones(()))  # BagOfModels reads the parameters' device

    def forward(self, mix: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(mix.shape[0], len(self.sources), *mix.shape[1:], dtype=mix.dtype)
        out[:, self.sources.index("vocals")] = mix * self.gain
        return out


def make_identity_demucs_repo(models_dir: str | Path, name: str = "htdemucs") -> Path:
    """Like ``make_demucs_repo`` but the one model is an ``IdentityDemucs``. Returns the repo folder."""
    repo = Path(models_dir) / "demucs"
    repo.mkdir(parents=True, exist_ok=True)
    signature = hashlib.sha256(f"identity:{name}".encode()).hexdigest()[:8]
    model = IdentityDemucs(FOUR_SOURCES)
    package = {
        "klass": IdentityDemucs,
        "args": (FOUR_SOURCES,),
        "kwargs": {},
        "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }
    torch.save(package, repo / f"{signature}.th")
    (repo / f"{name}.yaml").write_text(yaml.safe_dump({"models": [signature]}))
    return repo
