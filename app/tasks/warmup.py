"""Warm the default models in the background once a worker process starts (never in a startup hook)."""

from __future__ import annotations

import logging
import threading

from celery.signals import worker_process_init

log = logging.getLogger(__name__)


def warm_models(app) -> None:  # noqa: ANN001 - a Flask app
    import numpy as np

    from app.audio import separation, whisper_models
    from app.audio.types import Waveform

    with app.app_context():
        models_dir = app.config["MODELS_DIR"]
        try:
            silence = Waveform(np.zeros((2, 44100), dtype=np.float32), 44100)
            separation.separate(silence, separation.default_model(models_dir), models_dir)
            whisper_models.load_whisper(whisper_models.default_model(models_dir, "en"), models_dir)
            log.info("models warm")
        except Exception:  # noqa: BLE001 - warm-up is an optimisation; jobs load on demand
            log.warning("model warm-up failed", exc_info=True)


@worker_process_init.connect
def _start_warmup(**_kwargs: object) -> None:
    from celery import current_app as celery_app

    flask_app = getattr(celery_app, "flask_app", None)
    if flask_app is not None and flask_app.config.get("WARM_MODELS", True):
        threading.Thread(target=warm_models, args=(flask_app,), name="warmup", daemon=True).start()
