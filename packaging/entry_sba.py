"""Frozen entry point of the `sba` command line (PyInstaller)."""
import sys

from sba_desktop.cli import main

sys.exit(main())
