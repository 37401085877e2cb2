#!/bin/sh
# Remove what install.sh put in place. Your photos are never touched; your library (catalog,
# index, thumbnails) stays in ~/.local/share/sba-desktop and ~/.cache/sba-desktop: delete those
# folders yourself if you want it gone too.
set -eu
APP_ID=org.sbadesktop.SbaDesktop
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
rm -f "$HOME/.local/bin/sba" "$HOME/.local/bin/sba-desktop"
rm -f "$DATA/applications/$APP_ID.desktop" "$DATA/icons/hicolor/scalable/apps/$APP_ID.svg" \
      "$DATA/metainfo/$APP_ID.metainfo.xml"
rm -rf "$HOME/.local/opt/sba-desktop"
command -v update-desktop-database >/dev/null && update-desktop-database "$DATA/applications" || true
echo "sba-desktop removed (your library data was kept; see the comment at the top of this script)"
