"""``python -m deploy <command>``; the command line is deploy.cli."""

import sys

from deploy.cli import main

if __name__ == "__main__":
    sys.exit(main())
