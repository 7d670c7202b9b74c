"""Dataset report: reason categories and the charts of an output with all three tables."""

import json

from PIL import Image

from liwi.add.report import build_report, plot_report, reason_kind, write_report
from liwi.lake import Lake
from liwi.sample_photos import procedural_scene
from liwi.schema import error_row, sample_id_for, stack_to_row
from liwi.table import write_table


def test_reason_kinds_group_similar_reasons():
    assert (
        reason_kind(
            "read_decode: truncated or corrupt JPEG data: image file is truncated "
            "(13 bytes not processed)"
        )
        == "read_decode: truncated or corrupt JPEG data"
    )
    assert reason_kind("read_decode: empty file (0 bytes)") == "read_decode: empty file"
    assert reason_kind("agent: segment: no salient object found") == (
        "agent: segment: no salient object found"
    )
    assert reason_kind("object 1 covers 95.0% of the image (max 60%)") == reason_kind(
        "object 2 covers 71.2% of the image (max 60%)"
    )


def test_report_counts_and_charts(tmp_path):
    out = Lake.from_uri(str(tmp_path))
    ok = [
        stack_to_row(
            procedural_scene(s, 64, 1 + s % 2),
            sample_id=sample_id_for(bytes([s])),
            source_uri=f"p{s}",
        )
        for s in range(3)
    ]
    bad = stack_to_row(
        procedural_scene(9, 64, 1),
        sample_id="r",
        source_uri="r",
        status="rejected",
        reasons=["recomposition PSNR 21.0 dB below 30.0 dB"],
    )
    err = error_row(sample_id="e", source_uri="e", reason="read_decode: empty file (0 bytes)")
    write_table(ok, out.child("layers"))
    write_table([bad], out.child("rejects"))
    write_table([err], out.child("errors"))
    report = write_report(out)
    assert report["counts"] == {"ok": 3, "rejected": 1, "error": 1, "total": 5}
    assert report["layers_per_sample"] == {"2": 2, "3": 1}
    assert sum(report["object_area"]["counts"]) == 4
    assert report["shadow_coverage"]["with_shadow"] == 4
    assert report["rejection_reasons"] == {"recomposition PSNR # dB below # dB": 1}
    assert report["error_reasons"] == {"read_decode: empty file": 1}
    assert json.loads((tmp_path / "report" / "report.json").read_text()) == json.loads(
        json.dumps(report)
    )
    with Image.open(tmp_path / "report" / "report.png") as png:
        assert png.format == "PNG" and png.size[0] > 800
    with Image.open(tmp_path / "report" / "contact_sheet.png") as sheet:
        assert sheet.size[1] > 3 * sheet.size[0] / 5  # one row per accepted sample (3)
    empty = build_report(Lake.from_uri(str(tmp_path / "nothing")))
    assert empty["counts"]["total"] == 0 and plot_report(empty)[:4] == b"\x89PNG"
