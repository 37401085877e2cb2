"""Frozen entry point of the `sba-desktop` window (PyInstaller)."""
import sys

from sba_desktop.app import main

sys.exit(main())
