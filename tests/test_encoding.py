"""One way to encode a photo: what `sba index` stores is what `sba search` computes, in every format
and for a region of each, and `sba eval` ranks exactly as a library searched with `sba search`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sba_desktop.cli import main
from sba_desktop.library.decode import decode
from sba_desktop.library.library import Library
from tests.conftest import dataset, link_photos, ukbench_names

pillow_heif = pytest.importorskip("pillow_heif")
pillow_heif.register_heif_opener()

REGION = (150, 100, 330, 250)  # x, y, w, h in the photo's upright pixels (640x480 and 480x640 photos)


def cli(capsys, *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def write_formats(src: Path, folder: Path, crops: Path) -> list[tuple[str, str]]:
    """Each photo as JPEG, HEIC, PNG, TIFF and a JPEG stored turned with EXIF orientation 6; beside
    them (another folder) the REGION of each file as decoded, saved losslessly. Returns
    (photo file, its crop file) pairs."""
    folder.mkdir()
    crops.mkdir()
    pairs = []
    for n in sorted(p.name for p in src.iterdir())[:6]:
        stem = n[:-4]
        with Image.open(src / n) as im:
            rgb = im.convert("RGB")
        files = {"jpg": folder / f"{stem}.jpg", "heic": folder / f"{stem}.heic", "png": folder / f"{stem}.png",
                 "tif": folder / f"{stem}.tif", "rot": folder / f"{stem}-rot6.jpg"}
        (folder / f"{stem}.jpg").write_bytes((src / n).read_bytes())
        rgb.save(files["heic"], format="HEIF", quality=90)
        rgb.save(files["png"])
        rgb.save(files["tif"])
        exif = Image.Exif()
        exif[0x0112] = 6  # stored turned 90 degrees, shown upright: as phones write them
        rgb.transpose(Image.Transpose.ROTATE_90).save(files["rot"], quality=95, exif=exif.tobytes())
        for kind, path in files.items():
            upright = decode(str(path)).rgb  # full decode, oriented
            x, y, w, h = REGION
            crop = crops / f"{path.stem}-{kind}-crop.png"
            upright.crop((x, y, x + w, y + h)).save(crop)
            pairs.append((str(path), str(crop)))
    return pairs


def test_every_format_and_a_region_of_each_store_the_vector_a_search_computes(tmp_path, capsys):
    pairs = write_formats(dataset("ukbench-dev") / "images", tmp_path / "photos", tmp_path / "crops")
    cli(capsys, "index", str(tmp_path / "photos"))   # the model is fitted on these: the fit sample
    cli(capsys, "index", str(tmp_path / "crops"))    # encoded with the fitted model: the encode path
    lib = Library.open()
    assert lib.status()["indexed"] == 2 * len(pairs)
    ids, vecs = lib.catalog.vectors(lib.model.model_id)
    stored = dict(zip(lib.catalog.paths(ids.tolist()).values(), vecs))
    for photo, crop in pairs:
        assert cosine(stored[photo], lib.encode_query(photo)) >= 0.99999, photo
        assert cosine(stored[crop], lib.encode_query(crop)) >= 0.99999, crop
        # a region of the photo is the crop of it: the same vector
        assert cosine(stored[crop], lib.encode_query(photo, REGION)) >= 0.99999, photo
    # lossless files of one photo are one photo: the JPEG's pixels saved as PNG and TIFF
    for photo, _ in pairs:
        if photo.endswith(".png"):
            for other in (photo[:-4] + ".jpg", photo[:-4] + ".tif"):
                assert cosine(stored[photo], stored[other]) >= 0.99999, other
    lib.close()


def test_eval_ranks_and_scores_as_a_library_searched_with_sba_search(tmp_path, capsys):
    from sba_desktop.lab.protocols import similarities
    from sba_desktop.lab.evaluation import EvalOptions, default_vectors, encode_set

    names = ukbench_names(40)
    root = tmp_path / "set"
    link_photos(dataset("ukbench-dev") / "images", root / "images", names)
    groups = [names[i:i + 4] for i in range(0, len(names), 4)]
    (root / "groundtruth.json").write_text(json.dumps({"groups": groups}))

    cli(capsys, "index", str(root / "images"))
    answers = json.loads(cli(capsys, "search", str(root / "images"), "--top", "40", "--json"))["queries"]
    assert len(answers) == 40  # a folder: every photo in it, one model load
    # text: grouped per query, in the order asked
    two = [str(root / "images" / names[5]), str(root / "images" / names[0])]
    text = cli(capsys, "search", *two, "--top", "3").splitlines()
    assert [line for line in text if line.startswith("query ")] == [f"query {q}" for q in two]
    assert len([line for line in text if line.strip() and not line.startswith("query ")]) == 6

    es = encode_set(root, EvalOptions())
    x = default_vectors(es, EvalOptions())
    sim = similarities(x, "adaptive")
    by_name = {Path(a["query"]).name: a["results"] for a in answers}
    for i, name in enumerate(es.photos.names):
        order = [j for j in np.argsort(-sim[i], kind="stable") if np.isfinite(sim[i, j])]
        results = by_name[name]
        assert [Path(r["path"]).name for r in results] == [es.photos.names[j] for j in order], name
        np.testing.assert_allclose([r["score"] for r in results], sim[i, order], atol=2e-5)


def test_eval_among_distractors_searches_them_but_never_asks_them(tmp_path, capsys):
    names = ukbench_names(40)
    root = tmp_path / "set"
    link_photos(dataset("ukbench-dev") / "images", root / "images", names)
    (root / "groundtruth.json").write_text(json.dumps({"groups": [names[i:i + 4] for i in range(0, 40, 4)]}))
    others = sorted(p.name for p in (dataset("paris-dev") / "images").iterdir())[:60]
    link_photos(dataset("paris-dev") / "images", tmp_path / "others", others)
    alone = json.loads(cli(capsys, "eval", str(root), "--json"))
    among = json.loads(cli(capsys, "eval", str(root), "--distractors", str(tmp_path / "others"), "--json"))
    assert alone["distractors"] == 0 and among["distractors"] == 60 and among["photos"] == 40
    assert sum(r["default"] for r in among["results"]) == 1
    d_alone = next(r for r in alone["results"] if r["default"])
    d_among = next(r for r in among["results"] if r["default"])
    # other photos can only push the objects' own photos down the ranking, never up
    assert d_among["mAP"] <= d_alone["mAP"] + 1e-9 and d_among["ns_score"] <= d_alone["ns_score"] + 1e-9
    assert d_among["mAP"] > 0.8
    text = cli(capsys, "eval", str(root), "--distractors", str(tmp_path / "others"))
    assert "40 photos among 60 distractors" in text
