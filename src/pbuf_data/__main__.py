import sys

from .operate.cli import main

sys.exit(main())
