import hashlib
import http.server
import io
import tarfile
import threading

import pyarrow.parquet as pq
import pytest

from pipeline import download, files
from pipeline.cli import UserError
from tests.archives import official_extras, review_members, write_archive


@pytest.fixture
def serve(tmp_path):
    """Serves files from a folder on 127.0.0.1; yields a function giving a file's URL."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, lambda name: f"http://127.0.0.1:{server.server_port}/{name}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def archive(tmp_path):
    return write_archive(tmp_path / "aclImdb_v1.tar.gz", review_members(per_folder=3))


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_fetch_downloads_and_verifies(serve, archive, tmp_path):
    root, url = serve
    (root / archive.name).write_bytes(archive.read_bytes())
    dest = download.fetch(url(archive.name), tmp_path / "cache" / "a.tar.gz", sha256(archive))
    assert dest.read_bytes() == archive.read_bytes()


def test_fetch_discards_a_download_with_the_wrong_hash(serve, archive, tmp_path):
    root, url = serve
    (root / archive.name).write_bytes(archive.read_bytes())
    dest = tmp_path / "cache" / "a.tar.gz"
    with pytest.raises(UserError, match="is corrupt: sha256 [0-9a-f]{64}, expected 0{64}.*IMDB_ARCHIVE="):
        download.fetch(url(archive.name), dest, "0" * 64)
    assert list(dest.parent.iterdir()) == []


def test_failed_download_names_url_reason_and_offline_option(serve, tmp_path):
    _, url = serve
    missing = url("nothing-here.tar.gz")
    with pytest.raises(UserError) as error:
        download.fetch(missing, tmp_path / "a.tar.gz", "0" * 64)
    message = str(error.value)
    assert missing in message and "HTTP 404" in message and "IMDB_ARCHIVE=" in message
    assert "\n" not in message


def test_reads_only_the_labeled_reviews(tmp_path):
    members = review_members(per_folder=2)
    path = write_archive(tmp_path / "a.tar.gz", {**members, **official_extras()})
    reviews = download.read_archive(path)
    assert len(reviews) == 8
    first = next(r for r in reviews if (r.split, r.folder, r.id) == ("train", "pos", 1))
    name = next(n for n in members if n.startswith("aclImdb/train/pos/1_"))
    assert first.text == members[name].decode() and name.endswith(f"_{first.rating}.txt")


def test_outputs_are_byte_identical_whatever_the_archive_holds_besides_reviews(tmp_path):
    members = review_members(per_folder=3)
    official = write_archive(tmp_path / "official.tar.gz", {**members, **official_extras()})
    repacked = write_archive(tmp_path / "repacked.tar.gz", members, shuffle_seed=7)
    outputs = []
    for archive in (official, repacked):
        table = download.reviews_table(r for r in download.read_archive(archive) if r.split == "train")
        out = tmp_path / f"{archive.stem}.parquet"
        files.write_parquet(out, table)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_table_is_ordered_by_id_then_label_with_label_from_folder(tmp_path):
    reviews = download.read_archive(write_archive(tmp_path / "a.tar.gz", review_members(per_folder=3)))
    table = download.reviews_table(r for r in reviews if r.split == "test")
    assert table.column_names == ["id", "rating", "label", "text"]
    assert table["id"].to_pylist() == [0, 0, 1, 1, 2, 2]
    assert table["label"].to_pylist() == [0, 1, 0, 1, 0, 1]
    ratings, labels = table["rating"].to_pylist(), table["label"].to_pylist()
    assert all((rating >= 7) == bool(label) for rating, label in zip(ratings, labels))


def test_wrong_review_count_is_refused_with_the_folder_named(tmp_path):
    members = review_members(per_folder=3)
    del members[next(n for n in members if n.startswith("aclImdb/test/neg/"))]
    path = write_archive(tmp_path / "short.tar.gz", members)
    with pytest.raises(UserError, match=r"short\.tar\.gz: aclImdb/test/neg has 2 reviews, expected 3"):
        download.check_structure(download.read_archive(path), 3, path)


def test_rating_that_contradicts_its_folder_is_refused(tmp_path):
    members = review_members(per_folder=1)
    members["aclImdb/train/pos/5_2.txt"] = b"mislabeled"
    path = write_archive(tmp_path / "a.tar.gz", members)
    with pytest.raises(UserError, match=r"train/pos/5_2\.txt has a rating outside 7-10"):
        download.check_structure(download.read_archive(path), 1, path)


def test_not_an_archive_and_a_truncated_archive_are_one_line_errors(tmp_path):
    text_file = tmp_path / "notes.tar.gz"
    text_file.write_text("not an archive")
    with pytest.raises(UserError, match=r"notes\.tar\.gz: not a readable gzip tar archive"):
        download.read_archive(text_file)
    whole = write_archive(tmp_path / "whole.tar.gz", review_members(per_folder=20))
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(UserError, match=r"truncated\.tar\.gz: not a readable gzip tar archive"):
        download.read_archive(truncated)


def test_links_and_non_files_are_never_read(tmp_path):
    members = review_members(per_folder=1)
    path = tmp_path / "hostile.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("aclImdb/train/pos/9_9.txt")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        archive.addfile(link)
        hard = tarfile.TarInfo("aclImdb/train/neg/9_1.txt")
        hard.type, hard.linkname = tarfile.LNKTYPE, "aclImdb/train/neg/0_1.txt"
        archive.addfile(hard)
    reviews = download.read_archive(path)
    assert sorted((r.split, r.folder, r.id) for r in reviews) == sorted(
        (n.split("/")[1], n.split("/")[2], int(n.split("/")[3].split("_")[0])) for n in members
    )


def test_missing_local_archive_is_named(tmp_path):
    with pytest.raises(UserError, match=r"nowhere\.tar\.gz: no such file \(from IMDB_ARCHIVE\)"):
        download.read_archive(tmp_path / "nowhere.tar.gz")


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("IMDB_CACHE_DIR", str(tmp_path / "mine"))
    assert download.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("IMDB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert download.cache_dir() == tmp_path / "xdg" / "imdb-sentiment-pipeline"
