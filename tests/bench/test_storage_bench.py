"""bench/storage.py: the round order and the ratio tables (no service, no S3 server)."""

from bench.storage import download_rows, round_order, service_rows


def test_rounds_alternate_and_balance_the_two_stores() -> None:
    order = round_order(3)
    assert order == ["s3", "local", "local", "s3", "s3", "local"]


def test_service_ratios_are_s3_medians_over_local_medians() -> None:
    def run(to_model: float, first: float) -> dict[str, float]:
        return {"to_model_s": to_model, "first_predict_s": first, "dataset_s": 1, "job_s": 1}

    local = [run(9, 1), run(10, 1), run(30, 1)]
    s3 = [run(12, 2), run(11, 2), run(1, 2)]
    rows = service_rows({"local": local, "s3": s3})
    assert rows[0] == ["upload → ready model", "10.00", "11.00", "**1.10**", "≤ 1.2"]
    assert rows[1][3] == "**2.00**"
    assert [row[4] for row in rows[2:]] == ["", ""]  # the parts have no goal of their own


def test_download_ratio_is_storage_over_plain_s3fs() -> None:
    result = {"files": 3, "mb": 27.3, "mb_s": {"storage": [90, 100, 300], "s3fs": [200, 50, 80]}}
    assert download_rows({"v": result}) == [["v", "3", "27.3", "100", "80", "**1.25**", "≥ 0.9"]]
