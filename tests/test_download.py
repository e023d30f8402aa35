import gzip
import hashlib
import io
import os
import resource
import shutil
import ssl
import subprocess
import sys
import tarfile
import tempfile
import threading
from itertools import pairwise
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import trustme

from pipeline import fetch, files
from pipeline.cli import UserError, run
from pipeline.sources import imdb
from pipeline.stages import download
from testbed.archives import official_extras, read_archive, review_members, reviews_table, write_archive
from tests.flaky_server import FlakyServer

ROOT = Path(__file__).resolve().parents[1]
NO_WAIT = (0, 0, 0)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def body(tmp_path):
    # big enough that "half" is many packets, small enough to be instant
    return write_archive(tmp_path / "served.tar.gz", review_members(per_folder=40)).read_bytes()


@pytest.fixture
def server(body):
    with FlakyServer(body) as flaky:
        yield flaky


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "cache" / "aclImdb_v1.tar.gz"


def get(server, dest, body, **options):
    options.setdefault("retry_delays", NO_WAIT)
    options.setdefault("sleep", lambda seconds: None)
    return fetch.fetch(server.url, dest, sha256(body), **options)


def test_fetch_downloads_and_verifies(server, dest, body):
    assert get(server, dest, body).read_bytes() == body
    assert server.ranges == [None]
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name, dest.name + ".lock"]


def test_a_dropped_connection_resumes_where_it_stopped(server, dest, body):
    server.plan = ["drop"]
    assert get(server, dest, body).read_bytes() == body
    assert server.ranges == [None, f"bytes={len(body) // 2}-"]


def test_a_partial_download_survives_a_failed_run_and_the_next_run_resumes_it(server, dest, body):
    server.plan = ["drop", "500"]
    with pytest.raises(fetch.DownloadError) as error:
        get(server, dest, body, retry_delays=(0,))
    message = str(error.value)
    assert "failed after 2 tries: HTTP 500" in message and f"kept in {fetch.partial_path(dest)}" in message
    assert not dest.exists() and fetch.partial_path(dest).read_bytes() == body[: len(body) // 2]

    assert get(server, dest, body).read_bytes() == body
    assert server.ranges[-1] == f"bytes={len(body) // 2}-"
    assert not fetch.partial_path(dest).exists()


def test_a_complete_part_file_is_verified_without_downloading_again(server, dest, body):
    dest.parent.mkdir()
    fetch.partial_path(dest).write_bytes(body)  # killed between the last byte and the rename
    assert get(server, dest, body).read_bytes() == body
    assert server.ranges == [f"bytes={len(body)}-"]  # answered 416: nothing left to send


@pytest.mark.parametrize("misbehaviour", ["ignore_range", "bad_range"])
def test_a_server_that_does_not_honour_range_is_handled_by_starting_over(server, dest, body, misbehaviour):
    server.plan = ["drop", misbehaviour]
    assert get(server, dest, body).read_bytes() == body


def test_500_then_200_succeeds_on_the_second_try(server, dest, body):
    server.plan = ["500"]
    waits = []
    assert get(server, dest, body, retry_delays=(3, 6), sleep=waits.append).read_bytes() == body
    assert waits == [3] and len(server.ranges) == 2


def test_a_server_that_stops_answering_times_out_and_is_retried(server, dest, body):
    server.plan = ["slow"]
    assert get(server, dest, body, timeout=0.2).read_bytes() == body
    assert len(server.ranges) == 2


def test_retries_back_off_exponentially_then_fail_with_one_line(server, dest, body):
    server.plan = ["500"] * 10
    waits = []
    with pytest.raises(fetch.DownloadError) as error:
        fetch.fetch(server.url, dest, sha256(body), sleep=waits.append)
    assert waits == list(fetch.RETRY_DELAYS)
    assert all(later == 2 * earlier for earlier, later in pairwise(waits))
    tries = len(fetch.RETRY_DELAYS) + 1
    assert len(server.ranges) == tries
    assert str(error.value) == f"download of {server.url} failed after {tries} tries: HTTP 500 Internal Server Error"


def test_client_errors_are_not_retried_and_the_error_says_how_to_work_offline(server, body, monkeypatch, tmp_path):
    monkeypatch.setenv("IMDB_CACHE_DIR", str(tmp_path / "cache"))
    server.plan = ["404"]
    with pytest.raises(UserError) as error:
        imdb.official_archive(server.url, sha256(body))
    message = str(error.value)
    assert server.url in message and "HTTP 404" in message and "IMDB_ARCHIVE=" in message
    assert "\n" not in message
    assert len(server.ranges) == 1


def test_wrong_bytes_are_discarded_with_expected_and_actual_hash(server, dest, body):
    server.plan = ["wrong_bytes"]
    served = bytearray(body)
    served[len(body) // 2] ^= 0xFF
    with pytest.raises(fetch.DownloadError) as error:
        get(server, dest, body)
    assert str(error.value).startswith(
        f"download of {server.url} is corrupt: sha256 {sha256(bytes(served))}, expected {sha256(body)};"
    )
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name + ".lock"]


def test_a_redirect_to_another_host_is_refused(body, dest):
    with FlakyServer(body) as server, FlakyServer(body) as elsewhere:
        server.plan, server.redirect_to = ["redirect"], elsewhere.url
        with pytest.raises(fetch.DownloadError, match="redirected to .*refusing to contact another host"):
            get(server, dest, body)
        assert elsewhere.ranges == [] and len(server.ranges) == 1


@pytest.fixture
def certificate_authority():
    return trustme.CA()


@pytest.fixture
def https_server(body, certificate_authority):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    certificate_authority.issue_cert("127.0.0.1").configure_cert(context)
    with FlakyServer(body, tls=context) as server:
        yield server


def test_https_certificates_are_verified_even_if_the_process_default_is_unverified(
    https_server, dest, body, monkeypatch
):
    monkeypatch.setattr(ssl, "_create_default_https_context", ssl._create_unverified_context)
    with pytest.raises(fetch.DownloadError, match="certificate is not trusted"):
        get(https_server, dest, body)
    assert not dest.exists()


def test_https_download_from_a_trusted_server(https_server, certificate_authority, dest, body, monkeypatch, tmp_path):
    certificate_authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    assert get(https_server, dest, body).read_bytes() == body


def test_a_verified_download_is_kept_and_reused(server, body, monkeypatch, tmp_path):
    monkeypatch.setenv("IMDB_CACHE_DIR", str(tmp_path / "cache"))
    first = imdb.official_archive(server.url, sha256(body))
    assert imdb.official_archive(server.url, sha256(body)) == first
    assert first.parent == tmp_path / "cache" and len(server.ranges) == 1

    first.write_bytes(b"damaged on disk")
    assert imdb.official_archive(server.url, sha256(body)).read_bytes() == body
    assert len(server.ranges) == 2


def test_concurrent_runs_download_once(server, body, monkeypatch, tmp_path):
    monkeypatch.setenv("IMDB_CACHE_DIR", str(tmp_path / "cache"))
    server.plan = ["late"]  # the first download is still running when the second run starts
    results = []
    runs = [threading.Thread(target=lambda: results.append(imdb.official_archive(server.url, sha256(body))))
            for _ in range(2)]
    for thread in runs:
        thread.start()
    for thread in runs:
        thread.join()
    assert len(results) == 2 and results[0] == results[1] and results[0].read_bytes() == body
    assert len(server.ranges) == 1


def test_a_full_disk_is_a_one_line_error_and_the_next_run_resumes(server, dest, body):
    limit = len(body) // 3
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))  # writes past it fail, as on a full disk
    try:
        with pytest.raises(UserError) as error:
            get(server, dest, body)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert str(error.value) == f"cannot write {fetch.partial_path(dest)}: File too large"
    assert not dest.exists() and fetch.partial_path(dest).stat().st_size <= limit

    assert get(server, dest, body).read_bytes() == body
    assert server.ranges[-1] is not None and server.ranges[-1].startswith("bytes=")


def test_an_unwritable_cache_directory_is_a_one_line_error(server, body, monkeypatch, tmp_path):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("IMDB_CACHE_DIR", str(tmp_path / "a-file" / "cache"))
    with pytest.raises(UserError, match=r"^cannot write .*a-file/cache/aclImdb_v1\.tar\.gz: Not a directory$"):
        imdb.official_archive(server.url, sha256(body))
    assert server.ranges == []


# Reading the archive


def test_reads_only_the_labeled_reviews(tmp_path):
    members = review_members(per_folder=2)
    path = write_archive(tmp_path / "a.tar.gz", {**members, **official_extras()})
    contents = read_archive(path)
    assert len(contents.reviews) == 8 and contents.tally.unexpected == [] and contents.tally.invalid_utf8 == 0
    first = next(r for r in contents.reviews if (r.split, r.folder, r.id) == ("train", "pos", 1))
    name = next(n for n in members if n.startswith("aclImdb/train/pos/1_"))
    assert first.text == members[name].decode() and name.endswith(f"_{first.rating}.txt")


def test_outputs_are_byte_identical_whatever_the_archive_holds_besides_reviews(tmp_path, monkeypatch, capsys):
    members = review_members(per_folder=3)
    official = write_archive(tmp_path / "official.tar.gz", {**members, **official_extras()})
    repacked = write_archive(tmp_path / "repacked.tar.gz", members, shuffle_seed=7)
    outputs = []
    for archive in (official, repacked):
        project = tmp_path / archive.stem
        assert run_download_stage(project, archive, 3, monkeypatch, capsys)[0] == 0
        outputs.append([(project / "data/raw" / f"{split}.parquet").read_bytes() for split in ("train", "test")])
    assert outputs[0] == outputs[1]


def test_the_stage_writes_what_one_table_of_all_reviews_gives(tmp_path, monkeypatch, capsys):
    archive = write_archive(tmp_path / "a.tar.gz", review_members(per_folder=5), shuffle_seed=3)
    assert run_download_stage(tmp_path / "project", archive, 5, monkeypatch, capsys)[0] == 0
    reviews = read_archive(archive).reviews
    for split in ("train", "test"):
        table = reviews_table(r for r in reviews if r.split == split)
        files.write_parquet(tmp_path / "whole.parquet", table)
        written = tmp_path / "project/data/raw" / f"{split}.parquet"
        assert written.read_bytes() == (tmp_path / "whole.parquet").read_bytes()


@pytest.mark.parametrize("budget", [1, 2, 500])
def test_row_groups_of_any_size_hold_the_same_table(tmp_path, monkeypatch, capsys, budget):
    archive = write_archive(tmp_path / "a.tar.gz", review_members(per_folder=4), shuffle_seed=5)
    assert run_download_stage(tmp_path / "whole", archive, 4, monkeypatch, capsys)[0] == 0
    monkeypatch.setattr(download, "TEXT_BYTES_PER_GROUP", budget)
    assert run_download_stage(tmp_path / "groups", archive, 4, monkeypatch, capsys)[0] == 0
    for split in ("train", "test"):
        whole = pq.ParquetFile(tmp_path / "whole/data/raw" / f"{split}.parquet")
        groups = pq.ParquetFile(tmp_path / "groups/data/raw" / f"{split}.parquet")
        assert whole.metadata.num_row_groups == 1
        rows = whole.metadata.num_rows
        assert groups.metadata.num_row_groups == rows if budget <= 2 else 1 < groups.metadata.num_row_groups < rows
        assert groups.read().equals(whole.read())


def test_row_groups_fill_up_to_the_budget_and_hold_at_least_one_row():
    groups = list(download.row_groups(np.array([3, 3, 5, 1, 1, 9]), budget=6))
    assert [(g.start, g.stop) for g in groups] == [(0, 2), (2, 4), (4, 5), (5, 6)]
    assert list(download.row_groups(np.array([], np.int64), budget=6)) == []


def test_a_split_is_ordered_by_id_then_label_with_the_label_from_the_folder(tmp_path, monkeypatch, capsys):
    archive = write_archive(tmp_path / "a.tar.gz", review_members(per_folder=3), shuffle_seed=3)
    assert run_download_stage(tmp_path / "project", archive, 3, monkeypatch, capsys)[0] == 0
    table = pq.read_table(tmp_path / "project/data/raw/test.parquet")
    assert table.column_names == ["id", "label", "text"]
    assert table["id"].to_pylist() == [0, 0, 1, 1, 2, 2]
    assert table["label"].to_pylist() == ["negative", "positive"] * 3
    assert table.equals(reviews_table(r for r in read_archive(archive).reviews if r.split == "test"))


def test_the_star_rating_as_the_target_gives_its_classes(tmp_path, monkeypatch, capsys):
    members = review_members(per_folder=3)
    archive = write_archive(tmp_path / "a.tar.gz", members)
    project = tmp_path / "project"
    project.mkdir()
    (project / "params.yaml").write_text((ROOT / "params.yaml").read_text().replace(
        "target: sentiment", "target: rating"))
    assert run_download_stage(project, archive, 3, monkeypatch, capsys, keep_params=True)[0] == 0
    table = pq.read_table(project / "data/raw/train.parquet")
    ratings = {int(name.split("_")[-1].removesuffix(".txt")) for name in members if "/train/" in name}
    assert table.schema.field("label").type == "int64" and set(table["label"].to_pylist()) == ratings


def test_wrong_review_count_is_refused_with_the_folder_named(tmp_path):
    members = review_members(per_folder=3)
    del members[next(n for n in members if n.startswith("aclImdb/test/neg/"))]
    path = write_archive(tmp_path / "short.tar.gz", members)
    with pytest.raises(UserError, match=r"short\.tar\.gz: aclImdb/test/neg has 2 reviews, expected 3"):
        imdb.check_counts(read_archive(path).tally, 3, path)


def checked(path):
    for review in imdb.reviews_in(path, imdb.Tally()):
        imdb.check_review(review, path)


def test_rating_that_contradicts_its_folder_is_refused(tmp_path):
    members = review_members(per_folder=1)
    members["aclImdb/train/pos/5_2.txt"] = b"mislabeled"
    path = write_archive(tmp_path / "a.tar.gz", members)
    with pytest.raises(UserError, match=r"train/pos/5_2\.txt has a rating outside 7-10"):
        checked(path)


def test_an_id_too_large_for_the_table_is_refused(tmp_path):
    members = review_members(per_folder=1)
    members["aclImdb/test/neg/2147483648_2.txt"] = b"far away"
    path = write_archive(tmp_path / "a.tar.gz", members)
    with pytest.raises(UserError, match=r"a\.tar\.gz: test/neg/2147483648_2\.txt has an id above 2147483647$"):
        checked(path)


def test_not_an_archive_is_a_one_line_error(tmp_path):
    text_file = tmp_path / "notes.tar.gz"
    text_file.write_text("not an archive")
    with pytest.raises(UserError, match=r"notes\.tar\.gz: not a readable gzip tar archive"):
        read_archive(text_file)


def test_every_truncation_and_a_changed_byte_are_errors(tmp_path):
    whole = write_archive(tmp_path / "whole.tar.gz", {**review_members(per_folder=20), **official_extras()})
    data = whole.read_bytes()
    damaged = tmp_path / "damaged.tar.gz"
    for cut in range(1, len(data), 37):  # includes cuts at member boundaries and in the gzip trailer
        damaged.write_bytes(data[:cut])
        with pytest.raises(UserError, match=r"damaged\.tar\.gz: not a readable gzip tar archive"):
            read_archive(damaged)
    for position in range(20, len(data) - 8, 101):
        changed = bytearray(data)
        changed[position] ^= 0x55
        damaged.write_bytes(bytes(changed))
        with pytest.raises(UserError, match=r"damaged\.tar\.gz: not a readable gzip tar archive"):
            read_archive(damaged)


def tar_layer(path: Path) -> tuple[bytes, list[tarfile.TarInfo]]:
    """The decompressed tar stream of a gzip tar, and its members (each with its header's offset)."""
    tar = gzip.decompress(path.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        return tar, archive.getmembers()


@pytest.mark.parametrize("after", ["the first zero block", "the end-of-archive marker", "the last record"])
def test_anything_but_zeros_after_the_end_of_the_tar_archive_is_an_error(tmp_path, after):
    path = write_archive(tmp_path / "a.tar.gz", review_members(per_folder=2))
    tar, members = tar_layer(path)
    last = members[-1]
    marker = last.offset_data + -(-last.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE  # where the zero blocks start
    at = {"the first zero block": marker + 512, "the end-of-archive marker": marker + 1024, "the last record": len(tar)}
    path.write_bytes(gzip.compress(tar + bytes(4096)))
    assert len(read_archive(path).reviews) == 8
    path.write_bytes(gzip.compress(tar[: at[after]] + b"junk" + tar[at[after] + 4 :]))
    with pytest.raises(UserError, match=r"not a readable gzip tar archive \(data after the end of the tar archive\)$"):
        read_archive(path)


def test_a_damaged_member_header_is_an_error_not_the_end_of_the_archive(tmp_path):
    path = write_archive(tmp_path / "a.tar.gz", review_members(per_folder=2))
    tar, members = tar_layer(path)
    damaged = bytearray(tar)
    damaged[members[3].offset] ^= 0x01  # its checksum no longer matches
    path.write_bytes(gzip.compress(bytes(damaged)))
    with pytest.raises(UserError, match=r"a\.tar\.gz: not a readable gzip tar archive \(Damaged tar archive\)$"):
        read_archive(path)


def test_an_interrupt_while_decompressing_stops_reading_as_an_interrupt(tmp_path, monkeypatch):
    path = write_archive(tmp_path / "a.tar.gz", review_members(per_folder=2))

    def interrupted(self, buffer):
        raise KeyboardInterrupt

    monkeypatch.setattr(gzip.GzipFile, "readinto", interrupted)  # where libarchive asks for the tar stream
    with pytest.raises(KeyboardInterrupt):
        read_archive(path)


def test_invalid_utf8_is_replaced_and_counted(tmp_path):
    members = review_members(per_folder=1)
    members["aclImdb/test/pos/0_9.txt"] = b"caf\xe9 was great \xff"
    contents = read_archive(write_archive(tmp_path / "a.tar.gz", members))
    review = next(r for r in contents.reviews if (r.split, r.folder) == ("test", "pos"))
    assert review.text == "caf\ufffd was great \ufffd"
    assert contents.tally.invalid_utf8 == 1
    assert "1 reviews with invalid UTF-8" in contents.tally.summary(Path("a.tar.gz"))


def hostile_archive(path: Path, members: dict[str, bytes], outside: Path) -> list[str]:
    """The members plus entries that would write or read outside if extracted; returns their names."""
    def entry(name, kind=tarfile.REGTYPE, linkname="", data=b""):
        info = tarfile.TarInfo(name)
        info.type, info.linkname, info.size = kind, linkname, len(data)
        return info, io.BytesIO(data)

    hostile = [
        entry("../escape.txt", data=b"escaped"),
        entry(str(outside / "absolute.txt"), data=b"absolute"),
        entry("aclImdb/train/pos/../../../escape2.txt", data=b"escaped"),
        entry("aclImdb/../../escape3.txt", data=b"escaped"),
        entry("aclImdb/train/pos/90_9.txt", tarfile.SYMTYPE, "/etc/passwd"),
        entry("aclImdb/train/neg/91_1.txt", tarfile.LNKTYPE, "aclImdb/train/neg/0_1.txt"),
        entry("aclImdb/test/pos/92_8.txt", tarfile.CHRTYPE),
        entry("aclImdb/test/neg/93_2.txt", tarfile.FIFOTYPE),
        entry("aclImdb/test/neg/94_2.txt", data=b"\0" * ((1 << 20) + 1)),  # too large to be a review
        entry("aclImdb/test/neg/notes.md", data=b"stray"),
        entry("elsewhere/readme.txt", data=b"stray"),
    ]
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            archive.addfile(*entry(name, data=data))
        for info, data in hostile:
            archive.addfile(info, data)
    return [info.name for info, _ in hostile]


def run_download_stage(project: Path, archive: Path, per_folder: int, monkeypatch, capsys, keep_params=False):
    """Runs the download stage in `project` as `python -m pipeline.stages.download` would;
    returns (exit code, out, err)."""
    project.mkdir(exist_ok=True)
    params = (project if keep_params else ROOT).joinpath("params.yaml").read_text()
    (project / "params.yaml").write_text(
        params.replace("reviews_per_folder: 12500", f"reviews_per_folder: {per_folder}")
    )
    monkeypatch.chdir(project)
    monkeypatch.setenv("IMDB_ARCHIVE", str(archive))
    try:
        run(download.main)
        code = 0
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def test_hostile_members_are_never_followed_or_written_and_are_counted(tmp_path, monkeypatch, capsys):
    members = review_members(per_folder=2)
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = tmp_path / "hostile.tar.gz"
    hostile = hostile_archive(archive, members, outside)
    project = tmp_path / "work" / "project"
    project.parent.mkdir()

    code, out, _ = run_download_stage(project, archive, 2, monkeypatch, capsys)

    assert code == 0
    assert f"8 labeled reviews; {len(hostile)} unexpected members ignored (first: '../escape.txt')" in out
    assert list(outside.iterdir()) == [] and sorted(p.name for p in project.parent.iterdir()) == ["project"]
    assert sorted(p.name for p in project.iterdir()) == ["data", "params.yaml"]
    texts = pq.read_table(project / "data/raw/train.parquet")["text"].to_pylist()
    texts += pq.read_table(project / "data/raw/test.parquet")["text"].to_pylist()
    assert sorted(texts) == sorted(data.decode() for data in members.values())


@pytest.mark.parametrize("damage", ["truncated", "wrong count", "not an archive"])
def test_a_bad_archive_stops_the_stage_with_one_line_and_no_output(tmp_path, monkeypatch, capsys, damage):
    members = review_members(per_folder=3)
    archive = write_archive(tmp_path / "bad.tar.gz", members)
    if damage == "truncated":
        archive.write_bytes(archive.read_bytes()[:-10])
    elif damage == "wrong count":
        write_archive(archive, {**members, "aclImdb/train/pos/99_9.txt": b"one too many"})
    else:
        archive.write_text("hello")
    code, _, err = run_download_stage(tmp_path / "project", archive, 3, monkeypatch, capsys)
    assert code == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {archive}: ")
    assert not (tmp_path / "project" / "data").exists()


def test_missing_local_archive_is_named(tmp_path):
    with pytest.raises(UserError, match=r"nowhere\.tar\.gz: no such file \(from IMDB_ARCHIVE\)"):
        read_archive(tmp_path / "nowhere.tar.gz")
    fifo = tmp_path / "fifo.tar.gz"
    os.mkfifo(fifo)  # no writer: opening it must not wait for one
    for path, kind in ((fifo, "a FIFO"), (Path("/dev/zero"), "a character device")):
        with pytest.raises(UserError, match=rf"^{path} is {kind}, not a gzip tar archive: expected a regular file$"):
            read_archive(path)


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("IMDB_CACHE_DIR", str(tmp_path / "mine"))
    assert imdb.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("IMDB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert imdb.cache_dir() == tmp_path / "xdg" / "imdb-sentiment-pipeline"


def test_a_temporary_folder_that_cannot_be_written_is_one_line_and_no_output(tmp_path, monkeypatch, capsys):
    archive = write_archive(tmp_path / "a.tar.gz", review_members(per_folder=2))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "not-there"))  # as TMPDIR would set it
    code, _, err = run_download_stage(tmp_path / "project", archive, 2, monkeypatch, capsys)
    assert code == 2 and "Traceback" not in err
    assert err.startswith(f"error: cannot write a temporary file in {tmp_path / 'not-there'} (TMPDIR): ")
    assert not (tmp_path / "project" / "data").exists()


def test_a_system_without_libarchive_is_told_so_in_one_line(tmp_path):
    project_root = str(Path(download.__file__).parents[1])
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")  # the imdb source: it needs libarchive
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.stages.download"], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": project_root, "LIBARCHIVE": str(tmp_path / "none.so")},
    )
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: reading the archive needs the libarchive library (") and "apt install" in line
    assert not (tmp_path / "data").exists()
