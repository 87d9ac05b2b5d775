"""sample_app: the service that shipshape's deploy, backup and restore-drill tests act on."""

__version__ = "2.0.2-broken-migration"

# Shown by GET / ; differs visibly between releases.
GREETING = "Hello from sample_app v2.0.2 (broken migration 0003_broken)"
