"""XMP sidecars: accepted categories written as dc:subject keywords.

The sidecar is `<photo file name>.xmp` next to the photo (the digiKam /
darktable convention). The photo file itself is never opened for writing. An
existing sidecar keeps all its other content; only missing keywords are added.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ET

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


def sidecar_path(photo_path: str) -> str:
    return photo_path + ".xmp"


def _new_packet() -> ET.ElementTree:
    meta = ET.Element(_q("x", "xmpmeta"))
    rdf = ET.SubElement(meta, _q("rdf", "RDF"))
    ET.SubElement(rdf, _q("rdf", "Description"), {_q("rdf", "about"): ""})
    return ET.ElementTree(meta)


def read_keywords(photo_path: str) -> list[str]:
    path = sidecar_path(photo_path)
    if not os.path.exists(path):
        return []
    root = ET.parse(path).getroot()
    return [li.text or "" for li in _bag_items(root)]


def _bag_items(root: ET.Element) -> list[ET.Element]:
    out = []
    for subject in root.iter(_q("dc", "subject")):
        for bag in subject:
            out.extend(bag.findall(_q("rdf", "li")))
    return out


def add_keywords(photo_path: str, keywords: list[str]) -> bool:
    """Add keywords to the photo's sidecar (created if absent). True if it changed."""
    path = sidecar_path(photo_path)
    tree = ET.parse(path) if os.path.exists(path) else _new_packet()
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
    tmp = path + ".tmp"
    tree.write(tmp, encoding="utf-8", xml_declaration=True)
    os.replace(tmp, path)
    return True
