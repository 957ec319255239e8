"""Cassettes stay vcrpy's: vcrpy itself replays one we recorded, and re-saving what was read writes the same bytes;
the parsed index beside them (``.promptvcr-cache/``, by each file's sha256) is only ever a faster read of the file.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import threading
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import vcr
import yaml

from harness.record import _cache as cache
from harness.record import _cassettes as cassettes
from harness.record import _index as indexed
from harness.record._cassettes import Cassette, RecordMode
from tests import evalproject as ep
from tests.fakeserver import FakeOpenAI

EVAL = "idx"


def _recorded(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> Path:
    """A project with one case × one variant × two samples, recorded against the fake server; its cassette."""
    root = pytester.path
    ep.init_project(root)
    case_file = ep.write_cases(root, EVAL, [ep.json_case("alpha")])
    ep.write_eval(
        root, EVAL, base_url=fake_openai.base_url, cases=[case_file], variants={"v": {"model": "m"}}, samples=2
    )
    pytester.runpytest("evals", "-p", "no:cacheprovider", "--record-mode", "once").assert_outcomes(passed=1)
    (path,) = ep.cassettes(root, EVAL)
    return path


def _index(cassettes_dir: Path) -> Path:
    return cassettes.index_dir(cassettes_dir)


def test_vcrpy_itself_replays_a_cassette_we_recorded(pytester: pytest.Pytester, fake_openai: FakeOpenAI) -> None:
    path = _recorded(pytester, fake_openai)
    sent = len(fake_openai.chat_requests)
    stored = yaml.safe_load(path.read_text(encoding="utf-8"))["interactions"]
    first = stored[0]["request"]
    with vcr.use_cassette(str(path), record_mode="none", match_on=["method", "uri", "body"]):
        request = urllib.request.Request(
            first["uri"], data=first["body"].encode(), headers={"content-type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            answer = json.loads(response.read())
    assert answer == json.loads(stored[0]["response"]["body"]["string"])
    assert len(fake_openai.chat_requests) == sent  # vcrpy answered: nothing reached the server


def test_what_was_read_saves_as_the_same_bytes_from_the_file_and_from_the_index(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    path = _recorded(pytester, fake_openai)
    original = path.read_bytes()
    index = tmp_path / "index"
    for _ in range(2):  # parsed from YAML (and indexed), then read from the index
        again = tmp_path / "again.yaml"
        cassettes.save(again, Cassette(path, RecordMode.NONE, index=index).data)
        assert again.read_bytes() == original
    assert [p.name for p in index.iterdir()] == [f"{hashlib.sha256(original).hexdigest()}.json"]


def test_a_replay_indexes_each_cassette_and_an_edited_file_is_read_anew(
    pytester: pytest.Pytester, fake_openai: FakeOpenAI
) -> None:
    path = _recorded(pytester, fake_openai)
    index = _index(pytester.path / "cassettes")
    shutil.rmtree(index, ignore_errors=True)  # the recording run may have made one: this replay's is looked at
    pytester.runpytest("evals", "-p", "no:cacheprovider").assert_outcomes(passed=1)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert [p.name for p in index.iterdir()] == [f"{digest}.json"]
    entry = json.loads((index / f"{digest}.json").read_text())
    stored = yaml.safe_load(path.read_text())["interactions"]
    assert entry["requests"] == [stored[0]["request"]]  # both samples sent the same request: kept once
    assert entry["interactions"] == [[0, i["response"]] for i in stored]

    edited = path.read_text(encoding="utf-8").replace('\\"ok\\": true', '\\"ok\\": false')
    assert edited != path.read_text(encoding="utf-8")
    path.write_text(edited, encoding="utf-8")
    read = Cassette(path, RecordMode.NONE, index=index).data
    assert read == yaml.safe_load(edited)["interactions"]  # the file's new text, not the index of its old one
    assert len(list(index.iterdir())) == 2


def test_an_unreadable_index_entry_is_parsed_again_from_the_file(tmp_path: Path) -> None:
    interactions = [_interaction("a")]
    path = tmp_path / "c.yaml"
    cassettes.save(path, interactions)
    index = tmp_path / "index"
    index.mkdir()
    (index / f"{hashlib.sha256(path.read_bytes()).hexdigest()}.json").write_text('{"torn": ')
    assert Cassette(path, RecordMode.NONE, index=index).data == interactions


def test_interactions_read_from_the_index_share_a_request_and_still_save_each_as_its_own(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    interactions = [_interaction("a"), _interaction("a"), _interaction("b")]
    cassettes.save(path, interactions)
    original = path.read_bytes()
    index = tmp_path / "index"
    Cassette(path, RecordMode.NONE, index=index)  # parsed, and indexed
    (entry,) = index.iterdir()
    assert len(json.loads(entry.read_text())["requests"]) == 2
    read = Cassette(path, RecordMode.NEW_EPISODES, index=index).data
    assert read == interactions and read[0]["request"] is read[1]["request"]
    cassettes.save(path, read)
    assert path.read_bytes() == original  # no YAML anchor for the shared request: vcrpy's text, as it was
    assert b"&id" not in original
    own = indexed.unshared(read)
    assert own == read and len({id(i["request"]) for i in own}) == 3
    assert own[0] is read[0] and own[2] is read[2]  # only the second of a shared request is copied
    assert all(i is j for i, j in zip(indexed.unshared(interactions), interactions, strict=True))  # nothing shared
    answers = [{"response": {"status": {"code": 200}}}, {"response": {"status": {"code": 500}}}]  # hand-made
    assert indexed.unshared(answers) == [
        {"response": {"status": {"code": 200}}},
        {"response": {"status": {"code": 500}}},
    ]


@pytest.mark.parametrize(
    "entry",
    [
        "[]",  # the layout before requests were kept once: a list of the interactions
        '{"layout": 1, "requests": [], "interactions": []}',
        '{"layout": 2, "requests": [], "interactions": [[0, {}]]}',  # a request it does not have
        '{"layout": 2, "requests": {}, "interactions": []}',
        '{"layout": 2, "requests": [{}], "interactions": [[0]]}',
        '{"layout": 2, "requests": [{}], "interactions": [["0", {}]]}',
    ],
)
def test_an_index_entry_of_another_layout_is_parsed_anew_from_the_file(tmp_path: Path, entry: str) -> None:
    path = tmp_path / "c.yaml"
    interactions = [_interaction("a")]
    cassettes.save(path, interactions)
    index = tmp_path / "index"
    index.mkdir()
    cached = index / f"{hashlib.sha256(path.read_bytes()).hexdigest()}.json"
    cached.write_text(entry)
    assert Cassette(path, RecordMode.NONE, index=index).data == interactions
    assert json.loads(cached.read_text())["layout"] == indexed.INDEX_LAYOUT  # and indexed again, as it is now


def test_data_json_would_change_is_read_from_the_yaml_each_time(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    interaction = _interaction("a")
    interaction["response"]["headers"]["when"] = [__import__("datetime").date(2026, 1, 2)]  # a YAML date
    cassettes.save(path, [interaction])
    index = tmp_path / "index"
    assert Cassette(path, RecordMode.NONE, index=index).data == [interaction]
    assert not index.exists()  # JSON would give the date back as text: not indexed


def test_an_old_vcrpy_cassette_with_python_tags_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    text = yaml.safe_dump({"version": 1, "interactions": [_interaction("a")]})
    path.write_text(text.replace("method: POST", "method: !!python/str POST"), encoding="utf-8")
    assert Cassette(path, RecordMode.NONE, index=tmp_path / "index").data[0]["request"]["method"] == "POST"


NOT_FILES = {  # what a cassette's path can be instead of a file: each is no cassette, read at once (no hang)
    "missing": lambda path: None,
    "folder": Path.mkdir,
    "fifo": os.mkfifo,  # a plain open would wait for a writer forever
    "link-to-dev-zero": lambda path: path.symlink_to("/dev/zero"),  # a plain read would never end
    "dangling-link": lambda path: path.symlink_to(path.with_name("gone.yaml")),
    "under-a-file": None,  # a path whose folder is a file
}


@pytest.mark.parametrize("kind", NOT_FILES)
def test_a_path_that_is_not_a_file_is_no_cassette_and_read_at_once(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "c.yaml"
    make = NOT_FILES[kind]
    if make is None:
        (tmp_path / "plain").write_text("x")
        path = tmp_path / "plain" / "c.yaml"
    else:
        make(path)
    found: list[object] = []
    reader = threading.Thread(target=lambda: found.append(cache.file_bytes(path)), daemon=True)
    reader.start()
    reader.join(timeout=10)
    assert found == [None]
    cassette = Cassette(path, RecordMode.ONCE, index=tmp_path / "index")
    assert (cassette.data, cassette.records) == ([], True)  # nothing to replay: recorded, as for a missing file


def test_a_files_bytes_are_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    data = bytes(range(256)) * 4096 + b"end"  # more than one read's worth of 64 KiB
    path.write_bytes(data)
    assert cache.file_bytes(path) == data
    path.with_name("empty").write_bytes(b"")
    assert cache.file_bytes(path.with_name("empty")) == b""


@pytest.mark.parametrize("trouble", ["short reads", "grown since its fstat"])
def test_a_files_bytes_are_read_whole_when_reads_come_back_short_or_it_grew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, trouble: str
) -> None:
    """One read of a byte more than the file holds is all of it only when it brought all of it: a read cut short
    (by a signal, or at Linux's 2 GiB a read) and a file longer than its fstat said are read on to their end."""
    path = tmp_path / "c.yaml"
    data = bytes(range(256)) * 300
    path.write_bytes(data)

    class Os:
        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        def read(self, fd: int, n: int) -> bytes:
            return os.read(fd, min(n, 1000) if trouble == "short reads" else n)

        def fstat(self, fd: int) -> os.stat_result:
            found = os.fstat(fd)
            if trouble == "short reads":
                return found
            return os.stat_result((found.st_mode, *found[1:6], found.st_size - 5000, *found[7:]))

    monkeypatch.setattr(cache, "os", Os())
    assert cache.file_bytes(path) == data


def test_a_file_that_cannot_be_read_is_an_error_for_a_cassette_and_a_miss_for_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "c.yaml"
    cassettes.save(path, [_interaction("a")])

    def refused(*args: object) -> int:  # what a file without read permission gives (this suite may run as root)
        raise PermissionError(errno.EACCES, "Permission denied", str(args[0]))

    monkeypatch.setattr(cache.os, "open", refused)
    with pytest.raises(PermissionError):
        Cassette(path, RecordMode.ONCE)  # not taken for a missing file: that would record over it
    assert cache.read(path) is None


def _interaction(content: str) -> dict[str, object]:
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": content}]})
    answer = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})
    return {
        "request": {"body": body, "headers": {}, "method": "POST", "uri": "http://127.0.0.1:1/v1/chat/completions"},
        "response": {"body": {"string": answer}, "headers": {}, "status": {"code": 200, "message": "OK"}},
    }
