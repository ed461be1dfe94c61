"""``python -m deploy <command>``; the command line is deploy.cli."""

import sys

try:
    from deploy.cli import main
except ModuleNotFoundError as exc:  # serving's first install leaves the client side out
    from deploy.errors import missing_package

    sys.exit(missing_package(exc))

if __name__ == "__main__":
    sys.exit(main())
