"""sample_app: the service that shipshape's deploy, backup and restore-drill tests act on."""

__version__ = "2.0.1-broken"

# Shown by GET / ; differs visibly between releases.
GREETING = "Hello from sample_app v2.0.1 (broken: /healthz always fails)"
