"""Who answers at an endpoint? Run in the backend's virtualenv with the plug-in's client:

    python -m installer.probe PLUGIN_DIR ENDPOINT BACKEND_PREFIX

prints `ours` (this installation's daemon), `other: <why>` (another colorize backend) or
`foreign` (something else, or nothing that speaks).
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    plugin_dir, endpoint, prefix = argv
    sys.path.insert(0, plugin_dir)
    from colorize_client import DEFAULTS, BackendError, Client

    config = dict(DEFAULTS, endpoint=endpoint, backend_prefix=prefix, hello_timeout_s=2.0)
    try:
        Client(config).hello()
        print("ours")
    except BackendError as exc:
        print(f"other: {exc.message}" if exc.code in ("version", "identity") else "foreign")


if __name__ == "__main__":
    main(sys.argv[1:])
