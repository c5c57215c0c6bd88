from celery import shared_task

from app.services.jobs import run_job
from app.services.pipeline import transcribe_work


@shared_task(name="app.tasks.transcription.transcribe_song")
def transcribe_song(job_id: str) -> None:
    """Time the lyrics word by word: align the given lyrics, or transcribe (queue: transcription)."""
    run_job(job_id, transcribe_work)
