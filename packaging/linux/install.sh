#!/bin/sh
# Install sba-desktop for this user (no root): the program under ~/.local/opt/sba-desktop, the
# commands in ~/.local/bin, the menu entry and icon under ~/.local/share. Run from the unpacked folder.
set -eu
APP_ID=org.sbadesktop.SbaDesktop
SRC=$(cd "$(dirname "$0")" && pwd)
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
DEST=$HOME/.local/opt/sba-desktop
BIN=$HOME/.local/bin
if [ "$SRC" != "$DEST" ]; then
    rm -rf "$DEST"
    mkdir -p "$(dirname "$DEST")"
    cp -a "$SRC" "$DEST"
fi
mkdir -p "$BIN" "$DATA/applications" "$DATA/icons/hicolor/scalable/apps" "$DATA/metainfo"
ln -sf "$DEST/sba-desktop" "$BIN/sba-desktop"
ln -sf "$DEST/sba" "$BIN/sba"
sed "s|^Exec=.*|Exec=$DEST/sba-desktop %F|" "$DEST/share/applications/$APP_ID.desktop" \
    > "$DATA/applications/$APP_ID.desktop"
cp "$DEST/share/icons/hicolor/scalable/apps/$APP_ID.svg" "$DATA/icons/hicolor/scalable/apps/"
cp "$DEST/share/metainfo/$APP_ID.metainfo.xml" "$DATA/metainfo/"
command -v update-desktop-database >/dev/null && update-desktop-database "$DATA/applications" || true
command -v gtk-update-icon-cache >/dev/null && gtk-update-icon-cache -q "$DATA/icons/hicolor" || true
echo "installed: $DEST (commands sba and sba-desktop in $BIN; menu entry '$APP_ID')"
case ":$PATH:" in *":$BIN:"*) ;; *) echo "note: $BIN is not on your PATH";; esac
