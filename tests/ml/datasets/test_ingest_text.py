"""ingest of text uploads: real tweets as CSV and JSONL, multilabel, broken rows, duplicates."""

from __future__ import annotations

import codecs
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import pytest

from ml.datasets.options import IngestLimits
from ml.datasets.records import MAX_LISTED
from ml.datasets.store import load_dataset
from tests.factories.uploads import tweets, tweets_csv, tweets_jsonl

if TYPE_CHECKING:
    from tests.ml.datasets.conftest import Store

TEXT: Final = "text_classification"


def _jsonl(path: Path, rows: Sequence[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_tweets_csv_counts_match_the_source(tmp_path: Path, store: Store) -> None:
    counts = tweets_csv(tmp_path / "tweets.csv", 300)
    result = store.ingest(tmp_path / "tweets.csv", TEXT)
    assert result.report["label_counts"] == counts
    assert result.report["num_examples"] == 300
    assert result.report["skipped"] == []
    assert result.manifest["labels"] == ["negative", "neutral", "positive"]
    first_text, first_label = tweets(300)[0]
    assert result.manifest["examples"][0] == {
        "labels": [first_label],
        "text": first_text,
        "source": "line 2",
    }


def test_tweets_jsonl_counts_match_the_source_and_load_back(tmp_path: Path, store: Store) -> None:
    counts = tweets_jsonl(tmp_path / "tweets.jsonl", 200, text_column="body", label_column="y")
    result = store.ingest(tmp_path / "tweets.jsonl", TEXT, text_column="body", label_column="y")
    assert result.report["label_counts"] == counts
    loaded = load_dataset(result.path)
    assert [(e.text, e.labels[0]) for e in loaded.examples] == tweets(200)
    assert all(e.file is None for e in loaded.examples)
    assert not (result.path / "files").exists()


def test_csv_and_jsonl_of_the_same_rows_differ_only_in_sources(
    tmp_path: Path, store: Store
) -> None:
    tweets_csv(tmp_path / "t.csv", 50)
    tweets_jsonl(tmp_path / "t.jsonl", 50)
    from_csv = store.ingest(tmp_path / "t.csv", TEXT).manifest["examples"]
    from_jsonl = store.ingest(tmp_path / "t.jsonl", TEXT).manifest["examples"]
    assert [(e["text"], e["labels"]) for e in from_csv] == [
        (e["text"], e["labels"]) for e in from_jsonl
    ]


def test_same_upload_twice_gives_the_same_sha256(tmp_path: Path, store: Store) -> None:
    tweets_csv(tmp_path / "t.csv", 40)
    assert (
        store.ingest(tmp_path / "t.csv", TEXT).sha256
        == store.ingest(tmp_path / "t.csv", TEXT).sha256
    )


def test_multilabel_csv(tmp_path: Path, store: Store) -> None:
    upload = tmp_path / "m.csv"
    upload.write_text(
        'text,label\nfirst,"[""sports"", ""news""]"\nsecond,news|tech\nthird,tech\nfourth, \n'
    )
    result = store.ingest(upload, TEXT, multilabel=True)
    assert [e["labels"] for e in result.manifest["examples"]] == [
        ["news", "sports"],
        ["news", "tech"],
        ["tech"],
    ]
    assert result.report["label_counts"] == {"news": 2, "sports": 1, "tech": 2}
    assert store.skipped(result) == {"line 5": "missing_label"}


def test_multilabel_jsonl(tmp_path: Path, store: Store) -> None:
    upload = _jsonl(
        tmp_path / "m.jsonl",
        [
            {"text": "a", "label": ["x", "y"]},
            {"text": "b", "label": "y|z"},
            {"text": "c", "label": []},
            {"text": "d", "label": [1, 2]},
        ],
    )
    result = store.ingest(
        upload,
        TEXT,
        multilabel=True,
    )
    assert [e["labels"] for e in result.manifest["examples"]] == [
        ["x", "y"],
        ["y", "z"],
        ["1", "2"],
    ]
    assert store.skipped(result) == {"line 3": "missing_label"}


def test_single_label_mode_skips_list_labels_and_keeps_pipes(tmp_path: Path, store: Store) -> None:
    upload = _jsonl(
        tmp_path / "s.jsonl",
        [
            {"text": "a", "label": ["x", "y"]},
            {"text": "b", "label": "x|y"},
            {"text": "c", "label": "z"},
            {"text": "d", "label": 7},
        ],
    )
    result = store.ingest(upload, TEXT, IngestLimits(min_examples_per_label=1))
    assert [e["labels"] for e in result.manifest["examples"]] == [["x|y"], ["z"], ["7"]]
    assert store.skipped(result) == {"line 1": "invalid_label"}


def test_broken_rows_are_skipped_with_their_line(tmp_path: Path, store: Store) -> None:
    upload = tmp_path / "b.csv"
    upload.write_text(
        "text,label\n"
        "good one,a\n"
        ",a\n"  # line 3: empty text
        "   ,b\n"  # line 4: blank text
        "no label,\n"  # line 5
        "short row\n"  # line 6: label cell missing
        '"spans\ntwo lines",b\n'  # lines 7-8: one record
        f"{'x' * 50},b\n"  # line 9: longer than the limit below
        "\n"
        "last,b\n"  # line 11
    )
    result = store.ingest(upload, TEXT, IngestLimits(max_text_chars=40))
    assert store.skipped(result) == {
        "line 3": "empty_text",
        "line 4": "empty_text",
        "line 5": "missing_label",
        "line 6": "missing_label",
        "line 9": "too_large",
    }
    sources = {e["source"]: e["text"] for e in result.manifest["examples"]}
    assert sources == {"line 2": "good one", "line 7": "spans\ntwo lines", "line 11": "last"}


def test_broken_jsonl_lines_are_skipped(tmp_path: Path, store: Store) -> None:
    upload = tmp_path / "b.jsonl"
    upload.write_text(
        '{"text": "ok", "label": "a"}\n'
        "{not json\n"
        '["a", "list"]\n'
        '{"text": 5, "label": "a"}\n'
        '{"label": "a"}\n'
        '{"text": "\\ud800 lone surrogate", "label": "b"}\n'
        '{"text": "fine", "label": "b"}\n'
    )
    result = store.ingest(upload, TEXT, IngestLimits(min_examples_per_label=1))
    assert store.skipped(result) == {
        "line 2": "corrupt",
        "line 3": "corrupt",
        "line 4": "corrupt",
        "line 5": "empty_text",
        "line 6": "corrupt",
    }


def test_csv_field_over_the_csv_module_limit_is_skipped(tmp_path: Path, store: Store) -> None:
    upload = tmp_path / "big.csv"
    upload.write_text(f"text,label\nok,a\n{'y' * 140_000},a\nfine,b\n")
    result = store.ingest(upload, TEXT, IngestLimits(min_examples_per_label=1))
    assert store.skipped(result) == {"line 3": "too_large"}
    assert result.report["num_examples"] == 2


def test_bad_encoding_past_the_preflight_head_names_line_and_byte(
    tmp_path: Path, store: Store
) -> None:
    upload = tmp_path / "late.csv"
    good = "".join(f"row number {i},{'ab'[i % 2]}\n" for i in range(5000)).encode()
    head = b"text,label\n" + good
    upload.write_bytes(head + "caf\u00e9,a\n".encode("cp1252"))
    assert len(head) > 64 * 1024
    error = store.fails(upload, TEXT)
    assert (error.code, error.status) == ("bad_encoding", 400)
    assert f"byte {len(head) + 3}" in error.message and "line 5002" in error.message


def test_bom_is_stripped_so_the_first_column_matches(tmp_path: Path, store: Store) -> None:
    upload = tmp_path / "bom.csv"
    upload.write_bytes(codecs.BOM_UTF8 + b"text,label\nhello there,a\nbye now,b\n")
    result = store.ingest(upload, TEXT, IngestLimits(min_examples_per_label=1))
    assert [e["text"] for e in result.manifest["examples"]] == ["hello there", "bye now"]


def test_header_match_tolerates_case_and_spaces(tmp_path: Path, store: Store) -> None:
    upload = tmp_path / "h.csv"
    upload.write_text(" Text ,LABEL\nhello there,a\nbye now,b\n")
    assert (
        store.ingest(upload, TEXT, IngestLimits(min_examples_per_label=1)).report["num_examples"]
        == 2
    )


def test_duplicates_by_normalized_text(tmp_path: Path, store: Store) -> None:
    upload = _jsonl(
        tmp_path / "d.jsonl",
        [
            {"text": "Great  product", "label": "pos"},
            {"text": " great product ", "label": "pos"},  # exact duplicate once normalized
            {"text": "GREAT\tPRODUCT", "label": "neg"},  # conflicting
            {"text": "awful", "label": "neg"},
        ],
    )
    result = store.ingest(upload, TEXT)
    assert [e["text"] for e in result.manifest["examples"]] == [
        "Great  product",  # stored as given (stripped), not normalized
        "GREAT\tPRODUCT",
        "awful",
    ]
    assert result.report["exact_duplicates"] == [
        {"sources": ["line 1", "line 2"], "labels": ["pos"], "count": 2}
    ]
    assert result.report["conflicting_duplicates"][0]["labels_by_source"] == {
        "line 1": ["pos"],
        "line 3": ["neg"],
    }


def test_skipped_list_is_bounded_but_fully_counted(tmp_path: Path, store: Store) -> None:
    upload = tmp_path / "many.csv"
    upload.write_text("text,label\nhello there,a\nbye now,b\n" + ",x\n" * (MAX_LISTED + 200))
    result = store.ingest(upload, TEXT, IngestLimits(min_examples_per_label=1))
    assert len(result.report["skipped"]) == MAX_LISTED
    assert result.report["skipped_counts"] == {"empty_text": MAX_LISTED + 200}


def test_imbalance_and_short_texts_are_warned_about(tmp_path: Path, store: Store) -> None:
    rows = [{"text": f"a long enough sentence {i}", "label": "big"} for i in range(8)]
    rows += [{"text": "ok", "label": "small"}, {"text": "fine then", "label": "small"}]
    result = store.ingest(_jsonl(tmp_path / "i.jsonl", rows), TEXT)
    assert result.report["imbalance_ratio"] == 4.0
    warnings = {w["code"]: w["message"] for w in result.report["warnings"]}
    assert set(warnings) == {"imbalanced_labels", "short_texts"}
    assert "collecting more 'small'" in warnings["imbalanced_labels"]


@pytest.mark.parametrize(
    ("content", "code"),
    [
        ("text,label\nonly,a\nthe same,a\n", "single_label"),
        ("text,label\n,a\n,b\n", "no_examples"),
        ("text,category\nx,a\n", "missing_column"),
    ],
)
def test_unusable_text_uploads_fail_and_leave_nothing(
    tmp_path: Path, store: Store, content: str, code: str
) -> None:
    upload = tmp_path / "u.csv"
    upload.write_text(content)
    assert store.fails(upload, TEXT).code == code


def test_a_line_longer_than_any_record_is_refused(tmp_path: Path, store: Store) -> None:
    upload = tmp_path / "l.jsonl"
    upload.write_text('{"text": "a", "label": "x"}\n' + "z" * 2_000_000 + "\n")
    error = store.fails(upload, TEXT, IngestLimits(max_text_chars=1000))
    assert (error.code, error.status) == ("line_too_long", 400)
