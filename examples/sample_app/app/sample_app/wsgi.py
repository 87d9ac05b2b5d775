"""WSGI entry point: gunicorn -c gunicorn.conf.py sample_app.wsgi:app"""

from .app import create_app

app = create_app()
