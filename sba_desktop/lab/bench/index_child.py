"""`sba index` as a user runs it, in a process of its own, so its peak memory is its own:
python -m sba_desktop.lab.bench.index_child HOME FOLDER MODEL_FILE|-   (prints one JSON line)."""
from __future__ import annotations

import json
import sys
import time

from sba_desktop.diagnostics import peak_rss_mb
from sba_desktop.engine.runtime import load_runtime
from sba_desktop.engine.sba import DescriptorModel
from sba_desktop.jobs.index import IndexJob
from sba_desktop.library.library import Library


def main(home: str, folder: str, model: str) -> dict:
    lib = Library.open(home)
    if model != "-":
        m = DescriptorModel.load(model)
        m.fitted_on = 10**6  # frozen: the pipeline alone, no refit
        lib.set_model(m)
        load_runtime(m.backbone)  # steady state: the session exists before the clock starts
    t = time.perf_counter()
    rep = IndexJob(lib, [folder]).run()
    el = time.perf_counter() - t
    return {"encoded": rep.encoded, "seconds": el, "rate": rep.encoded / el, "peak_mb": peak_rss_mb(),
            "torch": "torch" in sys.modules, "skipped": len(rep.skipped)}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4])))
