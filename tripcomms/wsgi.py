"""The app for a WSGI server: ``gunicorn tripcomms.wsgi:app``."""

from tripcomms import create_app
from tripcomms.logs import configure_logging

app = create_app()
configure_logging(app)
