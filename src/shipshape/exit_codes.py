"""The command line's exit codes (also in `shipshape --help` and docs/cli.md), and the word each puts in a
report's `result`."""

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_UNREACHABLE = 2
EXIT_USAGE = 3
EXIT_LOCKED = 4
EXIT_NO_HOSTS = 5
EXIT_INTERRUPTED = 130

RESULT_OF_EXIT = {
    EXIT_OK: "success",
    EXIT_FAILED: "failed",
    EXIT_UNREACHABLE: "unreachable",
    EXIT_USAGE: "error",
    EXIT_LOCKED: "locked",
    EXIT_NO_HOSTS: "no_hosts",
    EXIT_INTERRUPTED: "interrupted",
}
