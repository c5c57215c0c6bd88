"""Per worker process: size torch's thread pool, then warm the default models in the background.

Warm-up never runs inside a Celery startup hook's time budget: the hook only starts a thread.
"""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_process_init
from flask import Flask

log = logging.getLogger(__name__)


def warm_models(app: Flask) -> None:
    from app.audio import pitch, separation, whisper_models
    from app.services.models_catalog import compute_device, whisper_options

    with app.app_context():
        models_dir = app.config["MODELS_DIR"]
        try:  # the device and compile setting jobs use, so they find the model in the cache
            separation.load(separation.default_model(models_dir), models_dir, compute_device(),
                            compile=bool(app.config.get("SEPARATION_COMPILE")))
            whisper_models.load_whisper(whisper_models.default_model(models_dir, "en"), models_dir,
                                        **whisper_options())
            pitch.warm()  # librosa's numba kernels compile on first use (seconds)
            log.info("models warm")
        except Exception:  # noqa: BLE001 - warm-up is an optimisation; jobs load on demand
            log.warning("model warm-up failed", exc_info=True)


@worker_process_init.connect
def _init_process(**_kwargs: object) -> None:
    from celery import current_app as celery_app

    flask_app = getattr(celery_app, "flask_app", None)
    if flask_app is None:
        return
    import torch

    from app.services.models_catalog import worker_cores

    torch.set_num_threads(worker_cores(flask_app.config))  # over-subscribed pools slow models several-fold
    if flask_app.config.get("WARM_MODELS", 1):
        threading.Thread(target=warm_models, args=(flask_app,), name="warmup", daemon=True).start()
