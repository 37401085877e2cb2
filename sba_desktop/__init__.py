"""sba-desktop: find photos by example, offline, with SBA deep features."""
__version__ = "0.7.0"
APP_NAME = "sba-desktop"
