"""`sba eval`'s report as text (the JSON is the report itself)."""
from __future__ import annotations


def _name(row: dict) -> str:
    """The method, with +gW when the whole-photo region is in it (weight W)."""
    gw = row.get("global_weight")
    return f"{row['method']}+g{gw:g}" if gw else row["method"]


def _num(v) -> str:
    return "-" if v is None else f"{v:.3f}"


def format_table(report: dict) -> str:
    rows = report["results"]
    among = f" among {report['distractors']} distractors" if report.get("distractors") else ""
    lines = [f"{report['task']} on {report['set']} ({report['photos']} photos{among}), "
             f"{report['backbone']} at {report['image_size']}px"]
    if report["task"] == "retrieval":
        lines.append(f"{'method':<12} {'N':>4} {'dims':>6} {'reduction':<18} {'whitening':<20} {'expansion':<9} {'mAP':>6} {'N-S':>6}")
        for r in rows:
            lines.append(f"{_name(r):<12} {r['n_detectors'] or '':>4} {r['dims']:>6} {r['reduction']:<18} "
                         f"{r['whitening']:<20} {r['expansion']:<9} {r['mAP']:>6.3f} "
                         f"{r['ns_score']:>6.3f}{'  <- default' if r['default'] else ''}")
    elif report["task"] == "composites":
        lines.append(f"{'library':<8} {'photos':>7} {'cases':>6} {'found in top 10':>15} {'plain':>6} "
                     f"{'median plain rank':>17} {'pointed at':>10} {'of found':>8}")
        for r in report["library_shapes"]:
            lines.append(f"{r['library_shape']:<8} {r['library']:>7} {r['cases']:>6} {r['found_top10']:>15.3f} "
                         f"{r['found_top10_plain']:>6.3f} {r['median_plain_rank']:>17g} {r['pointed']:>10.3f} "
                         f"{_num(r['pointed_found']):>8}"
                         + (f"   band {r['found_inside_band']:.3f}, top 10 or band {r['found_top10_or_inside']:.3f}, "
                            f"band's part on it {r['pointed_inside']:.3f}" if "found_inside_band" in r else ""))
        lines.append("found: the composite among the default search's first 10 results; pointed at: the "
                     "explanation's strongest place inside the pasted box; grown: the model was fitted before "
                     "the composites came")
    elif report["task"] == "elsewhere":
        lines.append(f"{'library':<8} {'photos':>7} {'queries':>7} {'P@10':>6} {'mAP':>6} {'P@10 plain':>10} "
                     f"{'mAP plain':>9}")
        for r in report["library_shapes"]:
            lines.append(f"{r['library_shape']:<8} {r['library']:>7} {r['queries']:>7} "
                         f"{r['precision_at_10_default']:>6.3f} {r['mAP_default']:>6.3f} "
                         f"{r['precision_at_10_plain']:>10.3f} {r['mAP_plain']:>9.3f}")
        lines.append("queries are photos not in the library; P@10 over min(10, the group's photos in the library)")
    elif report["task"] == "open-set" and report.get("library_shapes"):
        lines.append(f"{'library':<8} {'folders':>7} {'unsorted':>8} {'around':>6} {'precision':>9} {'coverage':>8} "
                     f"{'rejection':>9} {'prec. >=0.8 (n)':>16} {'>=0.9 (n)':>13} {'calib. err.':>11} "
                     f"{'new categories right/wrong':>26}")
        for r in report["library_shapes"]:
            g = r["new_categories"]
            lines.append(f"{r['library_shape']:<8} {r['folders']:>3} x{r['examples']:<3} {r['unsorted']:>8} "
                         f"{r['background']:>6} {r['precision']:>9.3f} {r['coverage']:>8.3f} {r['rejection']:>9.3f} "
                         f"{_num(r['precision_at_0.8']):>9} ({r['proposals_at_0.8']:>4g}) "
                         f"{_num(r['precision_at_0.9']):>6} ({r['proposals_at_0.9']:>4g}) "
                         f"{r['calibration_error']:>11.3f} {g['offered']:>19g} / {g['wrong']:g}")
        lines.append(f"per library: the mean of {report['library_shapes'][0]['trials']} draws; at >= 0.8 / 0.9: "
                     "pooled over the draws, (n) proposals per draw; calibration error: 10 bins, proposals")
    elif report["task"] == "open-set":
        if rows and rows[0].get("library") == "small":
            lines[0] += ", small library (nothing else indexed)"
        if rows:
            r0 = rows[0]
            lines.append(f"{r0['categories']} categories x {r0['examples']} examples, {r0['unsorted']} unsorted, "
                         f"{r0['background']} other photos around, {r0['trials']} draws")
        lines.append(f"{'method':<12} {'N':>4} {'dims':>6} {'precision':>9} {'coverage':>8} {'rejection':>9} "
                     f"{'closed acc':>10} {'conf. of proposals':>18} {'prec. >=0.8':>11} {'>=0.9':>6}"
                     f"   (min precision/coverage/rejection)")
        for r in rows:
            lines.append(f"{_name(r):<12} {r['n_detectors'] or '':>4} {r['dims']:>6} {r['precision']:>9.3f} "
                         f"{r['coverage']:>8.3f} {r['rejection']:>9.3f} {r['closed_accuracy']:>10.3f} "
                         f"{r['confidence_of_proposals']:>18.3f} {_num(r.get('precision_at_0.8')):>11} "
                         f"{_num(r.get('precision_at_0.9')):>6}   ({r['min_precision']:.3f}/{r['min_coverage']:.3f}/"
                         f"{r['min_rejection']:.3f}){'  <- default' if r['default'] else ''}")
    else:
        lines.append(f"{'method':<12} {'N':>4} {'dims':>6} {'reduction':<18} {'whitening':<20} {'clf':<4} {'accuracy':>8}")
        for r in rows:
            lines.append(f"{_name(r):<12} {r['n_detectors'] or '':>4} {r['dims']:>6} {r['reduction']:<18} "
                         f"{r['whitening']:<20} {r['classifier']:<4} {r['accuracy']:>8.3f}"
                         f"{'  <- default' if r['default'] else ''}")
        if report.get("few_shot"):
            lines.append("few-shot (default descriptor; accuracy with n examples per category, 5 draws)")
            lines.append(f"{'n':>3} {'K':>3} {'MN':>6} {'MN K=40':>8} {'1-NN':>6} {'spreading':>9}")
            for r in report["few_shot"]:
                lines.append(f"{r['examples']:>3} {r['k_adapted']:>3} {r['mn']:>6.3f} {r['mn-fixed-k']:>8.3f} "
                             f"{r['1nn']:>6.3f} {r['spreading']:>9.3f}")
    return "\n".join(lines)
