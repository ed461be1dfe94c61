"""``python -m serving.healthcheck``: the image's HEALTHCHECK (exit 0 when /ping is 200).

Standard library only: the image has no curl.
"""

from __future__ import annotations

import argparse
import sys
import urllib.request

from . import config


def main() -> int:
    settings = config.load(argparse.Namespace())
    try:
        with urllib.request.urlopen(f"{url(settings.host, settings.port)}/ping",
                                    timeout=3) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


def url(host: str, port: int) -> str:
    """Where the server listens, as seen from inside the container: the loopback address
    of a wildcard host's family, else the host itself (SERVE_HOST=::1, an interface's)."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


if __name__ == "__main__":
    sys.exit(main())
