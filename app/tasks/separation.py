from celery import shared_task

from app.services.jobs import run_job
from app.services.pipeline import separate_work


@shared_task(name="app.tasks.separation.separate_song")
def separate_song(job_id: str) -> None:
    """Separate a song into vocals and instrumental stems (queue: separation)."""
    run_job(job_id, separate_work)
