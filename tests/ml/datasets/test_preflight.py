"""preflight: cheap checks that turn hostile or broken uploads into an immediate 4xx."""

import codecs
import json
import zipfile
from pathlib import Path

import pytest

from ml.datasets.errors import IngestError
from ml.datasets.options import IngestLimits, IngestOptions
from ml.datasets.preflight import preflight
from tests.factories.uploads import (
    image_bytes,
    write_zip,
    zip_with_encrypted_flag,
    zip_with_symlink,
)

IMAGES = {"cat/1.png": image_bytes(seed=1), "dog/2.png": image_bytes(seed=2)}


def _check(
    upload: Path, task: str = "", limits: IngestLimits | None = None, **options: object
) -> str:
    task = task or ("image_classification" if upload.suffix == ".zip" else "text_classification")
    opts = IngestOptions(task=task, filename=upload.name, **options)  # type: ignore[arg-type]
    return preflight(upload, opts, limits or IngestLimits())


def _error(
    upload: Path, task: str = "", limits: IngestLimits | None = None, **options: object
) -> IngestError:
    with pytest.raises(IngestError) as caught:
        _check(upload, task, limits, **options)
    return caught.value


def test_kinds_are_recognized(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("text,label\nhello,x\n")
    (tmp_path / "a.jsonl").write_text('{"text": "hello", "label": "x"}\n')
    assert _check(write_zip(tmp_path / "a.zip", IMAGES)) == "image_zip"
    assert _check(tmp_path / "a.csv") == "text_csv"
    assert _check(tmp_path / "a.jsonl") == "text_jsonl"


def test_unsupported_extension_is_415_and_lists_the_supported(tmp_path: Path) -> None:
    upload = tmp_path / "data.xlsx"
    upload.write_bytes(b"PK\x03\x04whatever")
    error = _error(upload, "text_classification")
    assert (error.code, error.status) == ("unsupported_file_type", 415)
    assert ".zip" in error.message and ".csv" in error.message and ".jsonl" in error.message


@pytest.mark.parametrize(
    ("name", "task"), [("a.zip", "text_classification"), ("a.csv", "image_classification")]
)
def test_wrong_task_for_the_file_kind_is_422(tmp_path: Path, name: str, task: str) -> None:
    upload = tmp_path / name
    upload.write_bytes(b"x")
    error = _error(upload, task)
    assert (error.code, error.status, error.field) == ("wrong_task", 422, "task")


@pytest.mark.parametrize("name", ["a.zip", "a.csv", "a.jsonl"])
def test_zero_byte_upload_is_400(tmp_path: Path, name: str) -> None:
    upload = tmp_path / name
    upload.touch()
    assert (_error(upload).code, _error(upload).status) == ("empty_upload", 400)


def test_a_zip_that_is_not_a_zip_is_400(tmp_path: Path) -> None:
    upload = tmp_path / "a.zip"
    upload.write_text("this is plain text pretending to be a zip\n" * 10)
    assert (_error(upload).code, _error(upload).status) == ("not_a_zip", 400)


@pytest.mark.parametrize(
    "name", ["../evil.png", "cat/../../evil.png", "/etc/evil.png", "C:/evil.png", "..\\evil.png"]
)
def test_entries_escaping_the_archive_reject_the_upload(tmp_path: Path, name: str) -> None:
    upload = write_zip(tmp_path / "a.zip", {**IMAGES, name: image_bytes(seed=3)})
    error = _error(upload)
    assert (error.code, error.status) == ("unsafe_archive_path", 400)
    assert repr(name) in error.message


def test_symlink_entries_reject_the_upload(tmp_path: Path) -> None:
    error = _error(zip_with_symlink(tmp_path / "a.zip"))
    assert (error.code, error.status) == ("archive_symlink", 400)


def test_encrypted_entries_reject_the_upload(tmp_path: Path) -> None:
    error = _error(zip_with_encrypted_flag(tmp_path / "a.zip"))
    assert (error.code, error.status) == ("encrypted_archive", 400)


def test_compression_that_decompresses_unbounded_is_refused(tmp_path: Path) -> None:
    upload = write_zip(tmp_path / "a.zip", IMAGES, compression=zipfile.ZIP_BZIP2)
    assert (_error(upload).code, _error(upload).status) == ("unsupported_compression", 400)


def test_entry_count_is_capped_before_the_directory_is_parsed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = {f"cat/x{i}.png": b"x" for i in range(30)}
    upload = write_zip(tmp_path / "a.zip", {**IMAGES, **entries})

    def parse_directory(*args: object) -> None:
        raise AssertionError("the central directory was parsed")

    monkeypatch.setattr(zipfile, "ZipFile", parse_directory)
    error = _error(upload, limits=IngestLimits(max_entries=10))
    assert (error.code, error.status) == ("archive_too_large", 413)
    assert "32 entries" in error.message


def test_declared_total_size_is_capped(tmp_path: Path) -> None:
    upload = write_zip(tmp_path / "a.zip", {**IMAGES, "cat/zeros.png": bytes(100_000)})
    error = _error(upload, limits=IngestLimits(max_uncompressed_bytes=50_000))
    assert (error.code, error.status) == ("archive_too_large", 413)


def test_zip_without_images_is_422(tmp_path: Path) -> None:
    upload = write_zip(tmp_path / "a.zip", {"cat/notes.txt": b"hi", "dog/x.doc": b"hi"})
    assert (_error(upload).code, _error(upload).status) == ("no_examples", 422)


def test_images_at_the_root_without_labels_csv_need_folders(tmp_path: Path) -> None:
    upload = write_zip(tmp_path / "a.zip", {"1.png": image_bytes(seed=1), "2.png": b"x"})
    error = _error(upload)
    assert error.code == "missing_labels" and "labels.csv" in error.message


def test_a_single_label_folder_is_422(tmp_path: Path) -> None:
    upload = write_zip(tmp_path / "a.zip", {"cat/1.png": b"x", "cat/2.png": b"y"})
    error = _error(upload)
    assert (error.code, error.status) == ("single_label", 422)
    assert "'cat'" in error.message


def test_non_utf8_csv_says_where_and_how_to_fix(tmp_path: Path) -> None:
    upload = tmp_path / "a.csv"
    upload.write_bytes("text,label\ncaf\u00e9 ok,x\n".encode("latin-1"))
    error = _error(upload)
    assert (error.code, error.status) == ("bad_encoding", 400)
    assert "byte 14" in error.message and "line 2" in error.message
    assert "UTF-8" in error.message


def test_utf16_csv_is_a_bad_encoding(tmp_path: Path) -> None:
    upload = tmp_path / "a.csv"
    upload.write_bytes(codecs.BOM_UTF16_LE + "text,label\nhi,x\n".encode("utf-16-le"))
    assert _error(upload).code == "bad_encoding"


def test_bom_prefixed_csv_header_matches(tmp_path: Path) -> None:
    upload = tmp_path / "a.csv"
    upload.write_bytes(codecs.BOM_UTF8 + b"text,label\nhi,x\n")
    assert _check(upload) == "text_csv"


def test_a_multibyte_character_cut_by_the_head_is_not_an_error(tmp_path: Path) -> None:
    upload = tmp_path / "a.csv"
    # 'é' is two bytes; place one so the 64 KiB head ends between them.
    upload.write_bytes(b"text,label\n" + b"a" * (65536 - 12) + "\u00e9,x\n".encode())
    assert _check(upload) == "text_csv"


def test_missing_csv_column_lists_what_exists(tmp_path: Path) -> None:
    upload = tmp_path / "a.csv"
    upload.write_text("sentence,category\nhi,x\n")
    error = _error(upload)
    assert (error.code, error.status, error.field) == ("missing_column", 422, "text_column")
    assert "'sentence'" in error.message and "'category'" in error.message
    assert "text_column" in error.message and "label_column" in error.message
    assert _check(upload, text_column="sentence", label_column="category") == "text_csv"


def test_missing_jsonl_key_names_the_label_field(tmp_path: Path) -> None:
    upload = tmp_path / "a.jsonl"
    upload.write_text(json.dumps({"text": "hi", "tag": "x"}) + "\n")
    error = _error(upload)
    assert (error.code, error.field) == ("missing_column", "label_column")
    assert "'tag'" in error.message


def test_jsonl_whose_first_record_is_not_json_is_400(tmp_path: Path) -> None:
    upload = tmp_path / "a.jsonl"
    upload.write_text("text,label\nhi,x\n")
    assert (_error(upload).code, _error(upload).status) == ("bad_json", 400)


def test_text_upload_over_the_cap_is_413(tmp_path: Path) -> None:
    upload = tmp_path / "a.csv"
    upload.write_text("text,label\n" + "hello,x\n" * 100)
    error = _error(upload, limits=IngestLimits(max_uncompressed_bytes=100))
    assert (error.code, error.status) == ("file_too_large", 413)


def test_zip64_entry_count_is_read_from_the_zip64_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload = tmp_path / "many.zip"
    # Over 65,535 entries: the count only exists in the zip64 end-of-directory record.
    with zipfile.ZipFile(upload, "w", zipfile.ZIP_STORED) as archive:
        for i in range(66_000):
            archive.writestr(f"c/{i}", b"")
    monkeypatch.setattr(zipfile, "ZipFile", None)  # must not be needed to count
    error = _error(upload, limits=IngestLimits(max_entries=65_999))
    assert error.code == "archive_too_large" and "66000 entries" in error.message


def test_the_wrong_modality_lists_the_tasks_that_fit(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("text,target\nhello,1\n")
    error = _error(tmp_path / "a.csv", "image_regression")
    assert (error.code, error.field) == ("wrong_task", "task")
    assert "text_classification or text_regression" in error.message


def test_an_unknown_task_is_422_naming_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("text,label\nhello,x\n")
    error = _error(tmp_path / "a.csv", "audio_classification")
    assert (error.code, error.status, error.field) == ("invalid_task", 422, "task")
    assert "text_regression" in error.message


def test_regression_columns_are_checked_before_reading(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("text,price\nhello,1\n")
    assert _check(tmp_path / "a.csv", "text_regression", target_column="price") == "text_csv"
    error = _error(tmp_path / "a.csv", "text_regression")
    assert (error.code, error.field) == ("missing_column", "target_column")
    error = _error(tmp_path / "a.csv", "text_regression", target_column="price,")
    assert (error.code, error.field) == ("invalid_target_column", "target_column")
