"""comemory bench: every variant is measured and the stage shares add up."""
import math

from comemory.bench import STAGES, VARIANTS, bench, gflop_per_frame, markdown_table
from comemory.config import preset
from comemory.cpu import native_bf16


def test_bench_measures_every_variant_and_stage():
    # no time cap: the rows must not depend on how fast (or how loaded) the machine is
    results = bench(["tiny"], frames=12, seconds=math.inf)
    measured = [v for v in VARIANTS if v[0] == "fp32" or native_bf16()]
    assert [(r["precision"], r["channels_last"]) for r in results["rows"]] == measured
    for row in results["rows"]:
        assert row["fps"] > 0 and row["frames_timed"] == 7  # 12 frames less the warm-up
        assert set(row["share"]) == set(STAGES)
        assert 0.5 < sum(row["share"].values()) <= 1.0 + 1e-9
        assert row["gflop_per_frame"] > 0 and row["matmul_gflops"] > 0
    assert markdown_table(results).count("`tiny`") == len(measured)


def test_bench_counts_every_crop_of_the_object_path():
    results = bench(["objects"], frames=12, seconds=math.inf)
    per_crop = gflop_per_frame(preset("objects"))
    for row in results["rows"]:
        assert row["crops_per_frame"] >= 1  # the scene box at least; walkers add theirs
        assert row["gflop_per_frame"] == per_crop * row["crops_per_frame"]
        assert row["share"]["objects"] > 0
    header, _, *rows = markdown_table(results).splitlines()
    assert all(line.count("|") == header.count("|") for line in rows)
