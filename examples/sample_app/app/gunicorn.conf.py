"""gunicorn settings for sample_app.

systemd: ExecStart=<release>/venv/bin/gunicorn -c gunicorn.conf.py sample_app.wsgi:app
(WorkingDirectory=/srv/sample_app/current). Under socket activation (LISTEN_FDS set by
systemd or systemd-socket-activate) gunicorn serves the inherited sockets and no bind is
configured here; otherwise it binds to $BIND (default 127.0.0.1:8000).
"""

import os

wsgi_app = "sample_app.wsgi:app"

if not os.environ.get("LISTEN_FDS"):
    bind = [os.environ.get("BIND") or "127.0.0.1:8000"]

workers = int(os.environ.get("GUNICORN_WORKERS") or 2)
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 4)
timeout = 30
graceful_timeout = 5
keepalive = 2

# journald collects stdout/stderr.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL") or "info"
# No query strings or headers in the access log (nothing secret leaks there), except the caller's
# X-Request-ID ("-" without one), so `shipshape logs --request-id` finds a request.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(B)s %(M)sms rid=%({x-request-id}i)s'
proc_name = "sample_app"

# gunicorn >= 24 opens a control socket under $HOME/.gunicorn by default; several
# instances (or a service user without a writable home) would trip over it.
control_socket_disable = True
