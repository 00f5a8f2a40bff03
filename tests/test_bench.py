"""comemory bench: every variant is measured and the stage shares add up."""
from comemory.bench import STAGES, bench, markdown_table


def test_bench_measures_every_variant_and_stage():
    results = bench(["tiny"], frames=20, seconds=10)
    assert len(results["rows"]) == 4  # fp32, bf16, each with and without channels_last
    for row in results["rows"]:
        assert row["fps"] > 0 and row["frames_timed"] == 15  # 20 frames less the warm-up
        assert set(row["share"]) == set(STAGES)
        assert 0.5 < sum(row["share"].values()) <= 1.0 + 1e-9
        assert row["gflop_per_frame"] > 0 and row["matmul_gflops"] > 0
    assert markdown_table(results).count("`tiny`") == 4
