"""shipshape: runbooks as idempotent, tested Ansible playbooks."""

__version__ = "0.1.0"
