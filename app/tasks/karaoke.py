from celery import shared_task

from app.services.jobs import run_job
from app.services.pipeline import karaoke_work


@shared_task(name="app.tasks.karaoke.render_karaoke")
def render_karaoke(job_id: str) -> None:
    """Write the karaoke MP3 (ID3 SYLT/USLT), LRC files and the JSON timing document (queue: default)."""
    run_job(job_id, karaoke_work)
