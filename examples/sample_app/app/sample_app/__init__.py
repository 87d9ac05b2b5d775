"""sample_app: the service that shipshape's deploy, backup and restore-drill tests act on."""

__version__ = "1.0.0"

# Shown by GET / ; differs visibly between releases.
GREETING = "Hello from sample_app v1"
