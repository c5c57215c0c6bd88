"""Celery tasks: thin adapters from a job id to the pipeline's work functions."""

from app.tasks.karaoke import render_karaoke
from app.tasks.separation import separate_song
from app.tasks.transcription import transcribe_song

TASKS_BY_KIND = {"separate": separate_song, "transcribe": transcribe_song, "karaoke": render_karaoke}

__all__ = ["TASKS_BY_KIND", "render_karaoke", "separate_song", "transcribe_song"]
