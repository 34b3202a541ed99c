"""plan_layout: wrapper folders, junk and where labels.csv is looked for."""

import zipfile

from ml.datasets.layout import ArchiveLayout, folder_label, plan_layout


def _plan(*names: str) -> ArchiveLayout:
    return plan_layout([zipfile.ZipInfo(name) for name in names])


def test_a_single_wrapper_folder_is_stripped() -> None:
    layout = _plan("mydata/", "mydata/cat/1.jpg", "mydata/dog/2.jpg")
    assert layout.prefix == "mydata/"
    assert [path for path, _ in layout.files] == ["cat/1.jpg", "dog/2.jpg"]


def test_a_lone_label_folder_is_not_a_wrapper() -> None:
    layout = _plan("cat/1.jpg", "cat/2.jpg")
    assert layout.prefix == ""
    assert [folder_label(path) for path, _ in layout.files] == ["cat", "cat"]


def test_labels_csv_is_found_at_the_root_or_inside_the_wrapper() -> None:
    assert _plan("labels.csv", "a.jpg").labels_csv is not None
    wrapped = _plan("data/labels.csv", "data/a.jpg")
    assert wrapped.prefix == "data/" and wrapped.labels_csv is not None
    assert [path for path, _ in wrapped.files] == ["a.jpg"]
    assert _plan("cat/labels.csv", "dog/a.jpg").labels_csv is None


def test_os_junk_is_dropped_before_looking_for_a_wrapper() -> None:
    layout = _plan("__MACOSX/data/._a.jpg", "data/cat/a.jpg", "data/dog/b.jpg", ".DS_Store")
    assert layout.prefix == "data/"
    assert [path for path, _ in layout.files] == ["cat/a.jpg", "dog/b.jpg"]


def test_nested_folders_take_the_top_folder_as_label() -> None:
    assert folder_label("cat/indoor/1.jpg") == "cat"
    assert folder_label("1.jpg") is None
