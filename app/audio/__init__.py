"""The audio domain: decoding, separation, lyrics timing and karaoke exports.

A library on its own: nothing here imports flask, celery or sqlalchemy.
"""
