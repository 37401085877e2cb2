"""`python -m sba_desktop.cli`: the sba command."""
import sys

from sba_desktop.cli import main

sys.exit(main())
