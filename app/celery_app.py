"""Celery bound to the Flask app (the Flask docs' ``celery_init_app`` pattern)."""

from __future__ import annotations

from celery import Celery, Task
from flask import Flask
from kombu import Queue

QUEUES = ("separation", "transcription", "default")


def celery_init_app(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: object, **kwargs: object) -> object:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask, include=["app.tasks", "app.tasks.warmup"])
    celery_app.flask_app = app
    broker = app.config["REDIS_URL"]
    celery_app.conf.update(
        broker_url=broker,
        result_backend=broker,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="default",
        task_queues=[Queue(name) for name in QUEUES],
        task_routes={
            "app.tasks.separation.*": {"queue": "separation"},
            "app.tasks.transcription.*": {"queue": "transcription"},
            "app.tasks.karaoke.*": {"queue": "default"},
        },
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 4 * 3600},
        worker_hijack_root_logger=False,
    )
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
