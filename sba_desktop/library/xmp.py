"""XMP sidecars: accepted categories written as dc:subject keywords.

The sidecar is `<photo file name>.xmp` next to the photo (the digiKam /
darktable convention). The photo file itself is never opened for writing. An
existing sidecar keeps all its other content; only missing keywords are added.

A photo folder is untrusted: a sidecar name that is a link (or anything but a plain file) is left
alone, never read or written through, and a sidecar that is not readable XMP is left as it is
(SidecarError says why); the new content replaces the old through a fresh temporary file
(sba_desktop/files.py), so a file planted under a temporary name is never written either.
"""
from __future__ import annotations

import os
import stat
import xml.etree.ElementTree as ET

from sba_desktop.errors import SbaError
from sba_desktop.files import write_bytes

MAX_SIDECAR_BYTES = 16 * 1024 * 1024  # XMP packets are kilobytes; more is not a sidecar

NS = {
    "x": "adobe:ns:meta/",
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "dc": "http://purl.org/dc/elements/1.1/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "exif": "http://ns.adobe.com/exif/1.0/",
    "tiff": "http://ns.adobe.com/tiff/1.0/",
    "lr": "http://ns.adobe.com/lightroom/1.0/",
    "digiKam": "http://www.digikam.org/ns/1.0/",
    "photoshop": "http://ns.adobe.com/photoshop/1.0/",
    "xmpMM": "http://ns.adobe.com/xap/1.0/mm/",
}
for _prefix, _uri in NS.items():
    ET.register_namespace(_prefix, _uri)


def _q(prefix: str, tag: str) -> str:
    return f"{{{NS[prefix]}}}{tag}"


class SidecarError(SbaError):
    """A sidecar that is left alone (a link, not a file, not readable XMP); str() says why."""


def sidecar_path(photo_path: str) -> str:
    return photo_path + ".xmp"


def _new_packet() -> ET.ElementTree:
    meta = ET.Element(_q("x", "xmpmeta"))
    rdf = ET.SubElement(meta, _q("rdf", "RDF"))
    ET.SubElement(rdf, _q("rdf", "Description"), {_q("rdf", "about"): ""})
    return ET.ElementTree(meta)


def _read_sidecar(path: str) -> ET.ElementTree | None:
    """The sidecar's XML, None when there is none; SidecarError for one left alone."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise SidecarError("the sidecar is a link: left alone (sidecars are never written through links)")
    if not stat.S_ISREG(st.st_mode):
        raise SidecarError("the sidecar's name is taken by something that is not a file: left alone")
    if st.st_size > MAX_SIDECAR_BYTES:
        raise SidecarError(f"the sidecar is {st.st_size // 1_000_000} MB, not an XMP packet: left alone")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(MAX_SIDECAR_BYTES + 1)
    except OSError as exc:
        raise SidecarError(f"the sidecar cannot be read ({exc.strerror or exc}): left alone") from None
    try:
        return ET.ElementTree(ET.fromstring(data))
    except ET.ParseError as exc:
        raise SidecarError(f"the sidecar is not readable XMP ({exc}): left as it is") from None


def read_keywords(photo_path: str) -> list[str]:
    tree = _read_sidecar(sidecar_path(photo_path))
    return [] if tree is None else [li.text or "" for li in _bag_items(tree.getroot())]


def _bag_items(root: ET.Element) -> list[ET.Element]:
    out = []
    for subject in root.iter(_q("dc", "subject")):
        for bag in subject:
            out.extend(bag.findall(_q("rdf", "li")))
    return out


def add_keywords(photo_path: str, keywords: list[str]) -> bool:
    """Add keywords to the photo's sidecar (created if absent). True if it changed;
    SidecarError (nothing written) for a sidecar left alone."""
    path = sidecar_path(photo_path)
    tree = _read_sidecar(path) or _new_packet()
    root = tree.getroot()
    rdf = root if root.tag == _q("rdf", "RDF") else root.find(_q("rdf", "RDF"))
    if rdf is None:
        rdf = ET.SubElement(root, _q("rdf", "RDF"))
    subject = next(iter(rdf.iter(_q("dc", "subject"))), None)
    if subject is None:
        desc = rdf.find(_q("rdf", "Description"))
        if desc is None:
            desc = ET.SubElement(rdf, _q("rdf", "Description"), {_q("rdf", "about"): ""})
        subject = ET.SubElement(desc, _q("dc", "subject"))
    bag = subject.find(_q("rdf", "Bag"))
    if bag is None:
        bag = ET.SubElement(subject, _q("rdf", "Bag"))
    have = {li.text for li in bag.findall(_q("rdf", "li"))}
    added = [k for k in keywords if k not in have]
    for k in added:
        ET.SubElement(bag, _q("rdf", "li")).text = k
    if not added:
        return False
    ET.indent(tree, space=" ")
    write_bytes(path, ET.tostring(tree.getroot(), encoding="utf-8", xml_declaration=True), "a sidecar")
    return True
