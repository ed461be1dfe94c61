"""``python -m serving.healthcheck``: the image's HEALTHCHECK (exit 0 when /ping is 200).

Standard library only: the image has no curl.
"""

from __future__ import annotations

import argparse
import sys
import urllib.request

from . import config


def main() -> int:
    port = config.load(argparse.Namespace()).port
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=3) as response:
            return 0 if response.status == 200 else 1
    except OSError:
        return 1


if __name__ == "__main__":
    sys.exit(main())
