"""Loaders: the CLI's CSV/Parquet files, bad input, drop mode, format detection, real data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serendip.data.dataset import EVENT_CODES, Dataset
from serendip.data.loaders import (
    FORMATS,
    BadRows,
    DroppedRowsWarning,
    FileStats,
    LoadReport,
    SourceFile,
    detect_format,
    format_load_report,
    load_files,
    load_lastfm,
    load_movielens,
    load_platform,
    load_source,
    read_interactions,
    read_items,
    read_social,
    read_users,
)
from serendip.errors import ConfigError, DataError
from tests.conftest import shared_data

FIXTURES = Path(__file__).parent / "fixtures" / "loaders"


def write(directory: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = directory / name
    path.write_bytes(text.encode(encoding))
    return path


def error_of(func, *args, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        func(*args, **kwargs)
    return str(info.value)


# --------------------------------------------------------------------------- good files
@pytest.fixture(scope="module")
def fixture_ds() -> Dataset:
    return load_files(
        FIXTURES / "interactions.csv",
        FIXTURES / "items.csv",
        FIXTURES / "users.csv",
        FIXTURES / "social.csv",
    )


def test_fixture_files_load_with_all_columns(fixture_ds: Dataset) -> None:
    ds = fixture_ds
    assert (ds.n_users, ds.n_items, ds.n_interactions, len(ds.social)) == (4, 4, 6, 3)
    assert ds.name == "interactions"
    assert ds.users.to_list() == ["u1", "u2", "u3", "u4"]  # the users file, in its order
    assert ds.items.to_list() == ["i1", "i2", "i3", "i4"]
    frame = ds.interactions_frame()
    assert frame["user"].tolist() == ["u1", "u1", "u2", "u2", "u3", "u1"]
    assert frame["event"].tolist() == ["view", "like", "view", "share", "rating", "click"]
    # epoch seconds and ISO 8601 (2023-11-14T22:13:20Z = 1700000000) both parse; empty = NaN
    np.testing.assert_array_equal(
        ds.interactions.timestamp,
        [1_700_000_000, 1_700_000_000, 1_700_000_100, np.nan, 1_700_000_200, 1_700_000_300],
    )
    np.testing.assert_array_equal(ds.interactions.value, [np.nan] * 4 + [4.5, np.nan])
    meta = ds.item_meta
    assert meta.text[0] == "Hello, world"  # a quoted comma
    assert meta.text[2] == "A text\non two lines"  # a quoted newline
    assert list(meta.tags) == [("intro", "hello"), ("cats", "pets"), (), ("misc",)]
    assert list(meta.author) == ["u1", "u2", "", "u3"]
    assert meta.created_at[0] == pd.Timestamp("2023-11-01", tz="UTC").timestamp()
    assert np.isnan(meta.created_at[2])
    users = ds.user_meta
    assert list(users.interests) == [("news", "pets"), (), ("pets",), ()]
    assert users.private.tolist() == [False, True, False, False]
    assert users.created_at[1] == 1672617600
    assert users.attributes["country"].tolist() == ["FR", "", "DE", ""]
    social = ds.social_frame()
    assert list(zip(social.follower, social.followee, strict=True)) == [
        ("u1", "u2"),
        ("u2", "u1"),
        ("u3", "u4"),
    ]
    assert social.created_at[2] == pd.Timestamp("2023-07-01T12:00:00", tz="UTC").timestamp()


def test_progress_callback_names_each_step() -> None:
    steps: list[str] = []
    load_files(FIXTURES / "interactions.csv", FIXTURES / "items.csv", progress=steps.append)
    assert steps == [
        "reading interactions.csv",
        "reading items.csv",
        "checking references between files",
        "building the dataset",
    ]


def test_read_functions_index_rows_by_line() -> None:
    items = read_items(FIXTURES / "items.csv")
    # i3's text spans lines 4-5, so i4 starts on line 6
    assert items.index.tolist() == [2, 3, 4, 6]
    assert items.index.name == "line"
    inter = read_interactions(FIXTURES / "interactions.csv")
    assert inter.index.tolist() == [2, 3, 4, 5, 6, 7]
    assert inter.columns.tolist() == ["user", "item", "timestamp", "event", "value"]
    users = read_users(FIXTURES / "users.csv")
    assert users.columns.tolist() == ["user", "created_at", "interests", "private", "country"]
    social = read_social(FIXTURES / "social.csv")
    assert social.index.tolist() == [2, 3, 4]


def test_only_id_columns_are_required(tmp_path: Path) -> None:
    path = write(tmp_path, "interactions.csv", "user,item\nu1,i1\nu2,i1\n")
    ds = load_files(path)
    assert ds.n_interactions == 2
    assert np.isnan(ds.interactions.timestamp).all()
    assert np.isnan(ds.interactions.value).all()
    assert (ds.interactions.event == EVENT_CODES["view"]).all()
    items = write(tmp_path, "items.csv", "item\ni1\ni9\n")
    users = write(tmp_path, "users.csv", "user\nu1\nu2\n")
    social = write(tmp_path, "social.csv", "follower,followee\nu1,u2\n")
    ds = load_files(path, items, users, social)
    assert ds.items.to_list() == ["i1", "i9"]
    assert ds.item_meta.title.tolist() == ["", ""]
    assert np.isnan(ds.social.created_at).all()


def test_empty_optional_cells_mean_absent(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "interactions.csv",
        "user,item,timestamp,event,value\nu1,i1,,,\nu1,i2, , , \nu2,i1,5,LIKE,2\n",
    )
    ds = load_files(path)
    assert np.isnan(ds.interactions.timestamp[:2]).all()
    assert ds.interactions.timestamp[2] == 5.0
    # empty event = view; event names are case-insensitive
    assert ds.interactions.event.tolist() == [
        EVENT_CODES["view"],
        EVENT_CODES["view"],
        EVENT_CODES["like"],
    ]
    assert np.isnan(ds.interactions.value[:2]).all()


def test_users_without_a_users_file_include_followees_without_interactions(tmp_path: Path) -> None:
    inter = write(tmp_path, "interactions.csv", "user,item\nu2,i1\nu1,i1\n")
    social = write(tmp_path, "social.csv", "follower,followee\nu1,u3\nu4,u2\n")
    ds = load_files(inter, social=social)
    # interaction users in order of appearance, then the social graph's other followers,
    # then its other followees (the order of Dataset.from_frames)
    assert ds.users.to_list() == ["u2", "u1", "u4", "u3"]
    assert ds.social_frame()[["follower", "followee"]].values.tolist() == [
        ["u1", "u3"],
        ["u4", "u2"],
    ]
    assert ds.user_counts().tolist() == [1, 1, 0, 0]


def test_users_file_defines_the_users(tmp_path: Path) -> None:
    inter = write(tmp_path, "interactions.csv", "user,item\nu1,i1\n")
    users = write(tmp_path, "users.csv", "user\nu3\nu1\nu2\n")
    ds = load_files(inter, users=users)
    assert ds.users.to_list() == ["u3", "u1", "u2"]
    assert ds.interactions.user.tolist() == [1]
    bad = write(tmp_path, "bad.csv", "user,item\nu1,i1\nu7,i1\n")
    assert (
        error_of(load_files, bad, users=users)
        == "bad.csv, line 3, field 'user': user 'u7' is not in users.csv"
    )


def test_items_only_in_interactions_follow_the_items_file_without_a_file(tmp_path: Path) -> None:
    inter = write(tmp_path, "interactions.csv", "user,item\nu1,i2\nu1,i1\n")
    ds = load_files(inter)
    assert ds.items.to_list() == ["i2", "i1"]


def test_undirected_social_stores_both_directions_once(tmp_path: Path) -> None:
    inter = write(tmp_path, "interactions.csv", "user,item\nu1,i1\n")
    social = write(
        tmp_path, "social.csv", "follower,followee,created_at\nu1,u2,10\nu2,u1,20\nu3,u1,30\n"
    )
    ds = load_files(inter, social=social, undirected_social=True)
    edges = ds.social_frame()
    pairs = sorted(zip(edges.follower, edges.followee, strict=True))
    assert pairs == [("u1", "u2"), ("u1", "u3"), ("u2", "u1"), ("u3", "u1")]
    # each direction keeps its own line's created_at; a mirrored edge copies it
    got = {
        (f, g): c for f, g, c in zip(edges.follower, edges.followee, edges.created_at, strict=True)
    }
    assert got == {("u1", "u2"): 10, ("u2", "u1"): 20, ("u3", "u1"): 30, ("u1", "u3"): 30}
    directed = load_files(inter, social=social)
    assert len(directed.social) == 3
    frame = read_social(social, undirected=True)
    assert len(frame) == 4


def test_column_mapping(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "ratings.csv",
        "userId,movieId,rating,ts,user\n1,10,4.0,100,ignored\n2,10,3.5,200,ignored\n",
    )
    columns = {"user": "userId", "item": "movieId", "value": "rating", "timestamp": "ts"}
    frame = read_interactions(path, columns=columns)
    # a mapped column wins over a file column that carries our name
    assert frame["user"].tolist() == ["1", "2"]
    assert frame["value"].tolist() == [4.0, 3.5]
    assert frame["timestamp"].tolist() == [100.0, 200.0]
    ds = load_files(SourceFile(path, columns=columns))
    assert ds.users.to_list() == ["1", "2"]
    # messages name the file's column, not ours
    bad = write(tmp_path, "bad.csv", "userId,movieId,ts\n1,10,soon\n")
    assert error_of(read_interactions, bad, columns=columns | {"value": "ts"}) == (
        "bad.csv, line 2, field 'ts': cannot parse 'soon' as a timestamp (epoch seconds or ISO 8601)"
    )
    missing = write(tmp_path, "missing.csv", "uid,movieId\n1,10\n")
    assert error_of(read_interactions, missing, columns=columns) == (
        "missing.csv, line 1: missing required column 'userId' (mapped to 'user'); "
        "columns found: uid, movieId"
    )
    with pytest.raises(
        ConfigError,
        match=r"unknown column 'usr' in the column mapping of ratings.csv; valid: user, item",
    ):
        read_interactions(path, columns={"usr": "userId"})


def test_parquet_round_trip(tmp_path: Path, fixture_ds: Dataset) -> None:
    ds = fixture_ds
    inter = ds.interactions_frame()
    items = ds.items_frame()
    social = ds.social_frame()
    users = pd.DataFrame(
        {
            "user": ds.users.ids,
            "created_at": ds.user_meta.created_at,
            "interests": ["|".join(t) for t in ds.user_meta.interests],
            "private": ds.user_meta.private,
        }
    )
    paths = {}
    for name, frame in (
        ("interactions", inter),
        ("items", items),
        ("users", users),
        ("social", social),
    ):
        paths[name] = tmp_path / f"{name}.parquet"
        frame.to_parquet(paths[name])
    back = load_files(paths["interactions"], paths["items"], paths["users"], paths["social"])
    assert back.users == ds.users and back.items == ds.items
    pd.testing.assert_frame_equal(back.interactions_frame(), inter)
    pd.testing.assert_frame_equal(back.items_frame(), items)
    pd.testing.assert_frame_equal(back.social_frame(), social)
    assert back.user_meta.private.tolist() == ds.user_meta.private.tolist()
    assert list(back.user_meta.interests) == list(ds.user_meta.interests)


def test_parquet_typed_columns_and_row_numbers(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "user": [1, 2, 3],
            "item": [10, 10, 11],
            "timestamp": pd.to_datetime(pd.Series(["2024-01-01", None, "2024-01-02"]), utc=True),
            "value": [1.0, np.nan, 2.0],
        }
    )
    path = tmp_path / "events.parquet"
    frame.to_parquet(path)
    got = read_interactions(path)
    assert got["user"].tolist() == ["1", "2", "3"]
    assert got.index.name == "row" and got.index.tolist() == [1, 2, 3]
    assert got["timestamp"].iloc[0] == pd.Timestamp("2024-01-01", tz="UTC").timestamp()
    assert np.isnan(got["timestamp"].iloc[1]) and np.isnan(got["value"].iloc[1])
    frame["value"] = [1.0, -1.0, 2.0]
    frame.to_parquet(path)
    assert error_of(read_interactions, path) == (
        "events.parquet, row 2, field 'value': negative value '-1.0' (must be >= 0)"
    )
    frame["value"] = [[1.0], [2.0], [3.0]]  # a list where a number belongs
    frame.to_parquet(path)
    assert error_of(read_interactions, path) == (
        "events.parquet: column 'value' has type list<element: double>, which this column cannot hold"
    )


# --------------------------------------------------------------------------- bad input
INTERACTIONS_HEADER = "user,item,timestamp,event,value\n"

BAD_INTERACTIONS = [
    pytest.param(
        "u1,i1,1,view,1\nu1,i2,2,view,1\nu2,i1,3,view,1\nu2,i2,4,view,1\nu3,i1,5,view,1\nu3,i2,yesterday,view,1\n",
        "interactions.csv, line 7, field 'timestamp': cannot parse 'yesterday' as a timestamp (epoch seconds or ISO 8601)",
        id="timestamp",
    ),
    pytest.param(
        "u1,i1,1,view,1\n,i2,2,view,1\n",
        "interactions.csv, line 3, field 'user': empty ID",
        id="empty-user",
    ),
    pytest.param(
        "u1,  ,1,view,1\n",
        "interactions.csv, line 2, field 'item': empty ID",
        id="blank-item",
    ),
    pytest.param(
        "u1,i1,1,view,1\nu1,i2,2,view,-2\n",
        "interactions.csv, line 3, field 'value': negative value '-2' (must be >= 0)",
        id="negative-value",
    ),
    pytest.param(
        "u1,i1,1,view,lots\n",
        "interactions.csv, line 2, field 'value': cannot parse 'lots' as a number",
        id="value-not-a-number",
    ),
    pytest.param(
        "u1,i1,1,view,inf\n",
        "interactions.csv, line 2, field 'value': cannot parse 'inf' as a number",
        id="value-infinite",
    ),
    pytest.param(
        "u1,i1,1,view,1\nu1,i2,2,purchase,1\n",
        "interactions.csv, line 3, field 'event': unknown event type 'purchase' "
        "(valid: view, click, like, comment, share, rating)",
        id="event",
    ),
    pytest.param(
        "u1,i1,1,view,1\nu1,i2,2,view,1\nu2,i1,3,view,1\nu1,i2,2,view,1\n",
        "interactions.csv, line 5: duplicate of line 3",
        id="duplicate-line",
    ),
    pytest.param(
        "u1,i1,1,view,1\nu1,i1,1,view,1,extra\n",
        "interactions.csv, line 3: expected 5 fields, found 6",
        id="too-many-fields",
    ),
    pytest.param(
        "u1,i1,1,view,1\nu1,i2,2,view,1\nu2,i1,3,view\n",
        "interactions.csv, line 4: expected 5 fields, found 4",
        id="too-few-fields",
    ),
    pytest.param(
        'u1,i1,1,view,1\n"u\nv",i2,2,view,1\n\nu2,i1\n',
        "interactions.csv, line 6: expected 5 fields, found 2",
        id="malformed-after-a-quoted-newline-and-a-blank-line",
    ),
    pytest.param(
        "u1,i1,x,view,1\nu1,i2,2,view,1,9\n",
        "interactions.csv, line 2, field 'timestamp': cannot parse 'x' as a timestamp (epoch seconds or ISO 8601)",
        id="earlier-than-a-malformed-line",
    ),
    pytest.param(
        "u1,i1,1,view,1\n,i2,x,nope,-1\n",
        "interactions.csv, line 3, field 'user': empty ID",
        id="first-field-of-the-earliest-line",
    ),
    pytest.param(
        "u1,i1,1,view,1\n\nu1,i2,2023-13-45,view,1\n",
        "interactions.csv, line 4, field 'timestamp': cannot parse '2023-13-45' as a timestamp (epoch seconds or ISO 8601)",
        id="after-a-blank-line",
    ),
    pytest.param(
        'u1,i1,1,view,1\n"u1\nstill u1",i2,2,view,1\nu2,i2,x,view,1\n',
        "interactions.csv, line 5, field 'timestamp': cannot parse 'x' as a timestamp (epoch seconds or ISO 8601)",
        id="after-a-quoted-newline",
    ),
]


@pytest.mark.parametrize(("rows", "message"), BAD_INTERACTIONS)
def test_bad_interactions_name_file_line_field_and_problem(
    tmp_path: Path, rows: str, message: str
) -> None:
    path = write(tmp_path, "interactions.csv", INTERACTIONS_HEADER + rows)
    assert error_of(load_files, path) == message


def test_missing_id_column_is_an_error_even_when_dropping(tmp_path: Path) -> None:
    path = write(tmp_path, "interactions.csv", "user,timestamp\nu1,1\n")
    message = (
        "interactions.csv, line 1: missing required column 'item'; columns found: user, timestamp"
    )
    assert error_of(load_files, path) == message
    assert error_of(load_files, path, on_bad_rows="drop", report=LoadReport()) == message
    social = write(tmp_path, "social.csv", "follower,friend\nu1,u2\n")
    inter = write(tmp_path, "ok.csv", "user,item\nu1,i1\n")
    assert error_of(load_files, inter, social=social) == (
        "social.csv, line 1: missing required column 'followee'; columns found: follower, friend"
    )


def test_wrong_delimiter_is_hinted(tmp_path: Path) -> None:
    path = write(tmp_path, "interactions.csv", "user;item\nu1;i1\n")
    message = error_of(read_interactions, SourceFile(path, delimiter=","))
    assert message == (
        "interactions.csv, line 1: missing required column 'user'; columns found: user;item; "
        "is the delimiter ';'?"
    )


def test_delimiters_are_sniffed(tmp_path: Path) -> None:
    for name, text in (
        ("semi.csv", "user;item;value\nu1;i1;2\n"),
        ("tabs.tsv", "user\titem\tvalue\nu1\ti1\t2\n"),
        ("pipes.txt", "user|item|value\nu1|i1|2\n"),
    ):
        frame = read_interactions(write(tmp_path, name, text))
        assert frame[["user", "item", "value"]].values.tolist() == [["u1", "i1", 2.0]], name


def test_items_file_problems(tmp_path: Path) -> None:
    inter = write(tmp_path, "interactions.csv", "user,item\nu1,i1\nu1,i2\nu2,i9\n")
    items = write(tmp_path, "items.csv", "item,title\ni1,a\ni2,b\n")
    assert error_of(load_files, inter, items) == (
        "interactions.csv, line 4, field 'item': item 'i9' is not in items.csv"
    )
    dup_id = write(tmp_path, "items.csv", "item,title\ni1,a\ni1,b\n")
    assert (
        error_of(read_items, dup_id)
        == "items.csv, line 3, field 'item': duplicate item ID 'i1' (first on line 2)"
    )
    dup_line = write(tmp_path, "items.csv", "item,title\ni1,a\ni2,b\ni1,a\n")
    assert error_of(read_items, dup_line) == "items.csv, line 4: duplicate of line 2"
    bad_date = write(tmp_path, "items.csv", "item,created_at\ni1,2024-01-01\ni2,last week\n")
    assert error_of(read_items, bad_date) == (
        "items.csv, line 3, field 'created_at': cannot parse 'last week' as a timestamp (epoch seconds or ISO 8601)"
    )
    empty = write(tmp_path, "items.csv", "item,title\n,a\n")
    assert error_of(read_items, empty) == "items.csv, line 2, field 'item': empty ID"


def test_users_file_problems(tmp_path: Path) -> None:
    dup = write(tmp_path, "users.csv", "user,interests\nu1,a\nu2,b\nu1,c\n")
    assert (
        error_of(read_users, dup)
        == "users.csv, line 4, field 'user': duplicate user ID 'u1' (first on line 2)"
    )
    dup_line = write(tmp_path, "users.csv", "user,interests\nu1,a\nu1,a\n")
    assert error_of(read_users, dup_line) == "users.csv, line 3: duplicate of line 2"
    private = write(tmp_path, "users.csv", "user,private\nu1,yes\nu2,maybe\n")
    assert error_of(read_users, private) == (
        "users.csv, line 3, field 'private': cannot parse 'maybe' as a boolean (true/false, yes/no, 1/0)"
    )
    created = write(tmp_path, "users.csv", "user,created_at\nu1,1e9\nu2,-\n")
    assert error_of(read_users, created) == (
        "users.csv, line 3, field 'created_at': cannot parse '-' as a timestamp (epoch seconds or ISO 8601)"
    )


def test_social_file_problems(tmp_path: Path) -> None:
    inter = write(tmp_path, "interactions.csv", "user,item\nu1,i1\n")
    users = write(tmp_path, "users.csv", "user\nu1\nu2\n")
    unknown = write(tmp_path, "social.csv", "follower,followee\nu1,u2\nu2,u9\n")
    assert error_of(load_files, inter, users=users, social=unknown) == (
        "social.csv, line 3, field 'followee': user 'u9' is not in users.csv"
    )
    unknown_follower = write(tmp_path, "social.csv", "follower,followee\nu8,u2\n")
    assert error_of(load_files, inter, users=users, social=unknown_follower) == (
        "social.csv, line 2, field 'follower': user 'u8' is not in users.csv"
    )
    dup_line = write(tmp_path, "social.csv", "follower,followee\nu1,u2\nu2,u1\nu1,u2\n")
    assert error_of(read_social, dup_line) == "social.csv, line 4: duplicate of line 2"
    dup_edge = write(tmp_path, "social.csv", "follower,followee,created_at\nu1,u2,1\nu1,u2,2\n")
    assert error_of(read_social, dup_edge) == (
        "social.csv, line 3, field 'followee': duplicate edge 'u1' -> 'u2' (first on line 2)"
    )
    loop = write(tmp_path, "social.csv", "follower,followee\nu1,u2\nu2,u2\n")
    assert (
        error_of(read_social, loop)
        == "social.csv, line 3, field 'followee': user 'u2' follows themselves"
    )
    empty = write(tmp_path, "social.csv", "follower,followee\nu1,\n")
    assert error_of(read_social, empty) == "social.csv, line 2, field 'followee': empty ID"


def test_file_level_problems(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    assert error_of(load_files, missing) == f"{missing}: file not found"
    assert error_of(load_source, missing) == f"{missing}: file not found"
    empty = write(tmp_path, "interactions.csv", "")
    assert error_of(load_files, empty) == (
        "interactions.csv: the file is empty (expected a header line and data rows)"
    )
    header_only = write(tmp_path, "interactions.csv", "user,item\n")
    assert (
        error_of(load_files, header_only)
        == "interactions.csv: no interactions (the file has no data rows)"
    )
    dup_header = write(tmp_path, "interactions.csv", "user,item,user\nu1,i1,u2\n")
    assert (
        error_of(load_files, dup_header)
        == "interactions.csv, line 1: duplicate column name 'user' in the header"
    )
    assert error_of(load_files, tmp_path) == f"{tmp_path}: expected a file, found a directory"
    not_parquet = write(tmp_path, "x.parquet", "user,item\n")
    assert error_of(load_files, not_parquet).startswith("x.parquet: cannot read as Parquet:")


def test_blank_lines_and_delimiter_only_lines_are_not_rows(tmp_path: Path) -> None:
    path = write(tmp_path, "interactions.csv", "user,item\n\nu1,i1\n,\n\nu2,i2\n\n\n")
    frame = read_interactions(path)
    assert frame.index.tolist() == [3, 6]
    report = LoadReport()
    read_interactions(path, report=report)
    assert report.files == (FileStats("interactions.csv", 2, 2),)


def test_odd_encodings_do_not_crash(tmp_path: Path) -> None:
    latin = write(
        tmp_path, "items.csv", "item,title\ni1,Café Müller\ni2,Sigur Rós\n", encoding="latin-1"
    )
    assert read_items(latin)["title"].tolist() == ["Café Müller", "Sigur Rós"]
    bom = write(tmp_path, "bom.csv", "\ufeffuser,item\nu1,i1\n")
    assert read_interactions(bom)["user"].tolist() == ["u1"]
    utf8 = write(tmp_path, "utf8.csv", "item,title\ni1,東京\n")
    assert read_items(utf8)["title"].tolist() == ["東京"]


def test_bad_policy_and_unknown_format(tmp_path: Path) -> None:
    path = write(tmp_path, "interactions.csv", "user,item\nu1,i1\n")
    with pytest.raises(ConfigError, match="on_bad_rows must be 'raise' or 'drop', got 'skip'"):
        load_files(path, on_bad_rows="skip")  # type: ignore[arg-type]
    assert error_of(load_source, path, format="excel") == (
        "unknown format 'excel'; valid formats: platform, movielens, lastfm, csv, parquet"
    )
    assert FORMATS == ("platform", "movielens", "lastfm", "csv", "parquet")
    other = tmp_path / "other"
    other.mkdir()
    write(other, "notes.txt", "hello")
    assert error_of(load_source, other) == (
        f"{other}: cannot tell the format of this directory: expected manifest.json (platform), "
        "u.data (MovieLens 100K), user_artists.dat (Last.fm HetRec) or interactions.csv/.parquet; "
        "valid formats: platform, movielens, lastfm, csv, parquet"
    )


# --------------------------------------------------------------------------- drop mode
def test_drop_mode_counts_every_dropped_row(tmp_path: Path) -> None:
    inter = write(
        tmp_path,
        "interactions.csv",
        INTERACTIONS_HEADER
        + "u1,i1,1,view,1\n"  # 2 ok
        + "u1,i2,yesterday,view,1\n"  # 3 timestamp
        + ",i2,2,view,1\n"  # 4 empty user
        + "u2,i1,3,purchase,1\n"  # 5 event
        + "u2,i2,4,view,-1\n"  # 6 negative
        + "u1,i1,1,view,1\n"  # 7 duplicate of 2
        + "u3,i9,5,view,1\n"  # 8 unknown item
        + "u3,i1,nope,view,1\n"  # 9 timestamp
        + "u3,i2,6,view,1,7\n"  # 10 too many fields
        + "u3,i2,6,view,1\n",  # 11 ok
    )
    items = write(tmp_path, "items.csv", "item,title\ni1,a\ni2,b\ni1,c\n")
    users = write(tmp_path, "users.csv", "user\nu1\nu2\nu3\nu4\n")
    social = write(tmp_path, "social.csv", "follower,followee\nu1,u2\nu1,u9\nu1,u2\nu4,u4\n")
    report = LoadReport()
    ds = load_files(inter, items, users, social, on_bad_rows="drop", report=report)
    assert ds.interactions_frame()[["user", "item"]].values.tolist() == [["u1", "i1"], ["u3", "i2"]]
    assert ds.items.to_list() == ["i1", "i2"] and ds.item_meta.title.tolist() == ["a", "b"]
    assert ds.social_frame()[["follower", "followee"]].values.tolist() == [["u1", "u2"]]
    got = {(b.file, b.problem): (b.count, b.examples, b.field) for b in report.bad_rows}
    assert got == {
        ("interactions.csv", "wrong number of fields"): (1, (10,), None),
        ("interactions.csv", "empty ID"): (1, (4,), "user"),
        ("interactions.csv", "unparsable timestamp"): (2, (3, 9), "timestamp"),
        ("interactions.csv", "unknown event type"): (1, (5,), "event"),
        ("interactions.csv", "negative value"): (1, (6,), "value"),
        ("interactions.csv", "duplicate row"): (1, (7,), None),
        ("interactions.csv", "unknown item"): (1, (8,), "item"),
        ("items.csv", "duplicate ID"): (1, (4,), "item"),
        ("social.csv", "self-follow"): (1, (5,), "followee"),
        ("social.csv", "duplicate row"): (1, (4,), None),
        ("social.csv", "unknown user"): (1, (3,), "followee"),
    }
    assert report.dropped("interactions.csv") == 8
    assert report.n_dropped == 12
    assert report.files == (
        FileStats("interactions.csv", 10, 2),
        FileStats("items.csv", 3, 2),
        FileStats("users.csv", 4, 4),
        FileStats("social.csv", 4, 1),
    )
    lines = format_load_report(report)
    assert lines[0] == "interactions.csv: 10 rows read, 2 kept, 8 dropped"
    assert "  2 rows: unparsable timestamp (field 'timestamp'), lines 3, 9" in lines
    assert "  1 row: wrong number of fields, line 10" in lines
    assert "users.csv: 4 rows read, none dropped" in lines
    assert lines[-1] == "  1 row: unknown user (field 'followee'), line 3"


def test_drop_mode_without_a_report_warns(tmp_path: Path) -> None:
    path = write(tmp_path, "interactions.csv", "user,item\nu1,i1\n,i2\n")
    with pytest.warns(
        DroppedRowsWarning, match=re.escape("1 row: empty ID (field 'user'), line 3")
    ):
        ds = load_files(path, on_bad_rows="drop")
    assert ds.n_interactions == 1


def test_drop_mode_with_nothing_left_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "interactions.csv", "user,item\n,i1\n,i2\n")
    assert error_of(load_files, path, on_bad_rows="drop", report=LoadReport()) == (
        "interactions.csv: no interactions after dropping 2 malformed rows"
    )


def test_report_format_examples_and_merging() -> None:
    report = LoadReport()
    report.add_file(FileStats("a.parquet", 100, 90))
    report.add_bad_rows(BadRows("a.parquet", "empty ID", "user", 6, (1, 2, 3, 4, 5), "row"))
    report.add_bad_rows(BadRows("a.parquet", "empty ID", "user", 4, (7,), "row"))
    assert report.dropped("a.parquet", "empty ID") == 10
    assert format_load_report(report) == [
        "a.parquet: 100 rows read, 90 kept, 10 dropped",
        "  10 rows: empty ID (field 'user'), rows 1, 2, 3, ...",
    ]


# --------------------------------------------------------------------------- sources
def _write_platform(root: Path, manifest_format: str = "serendip-platform") -> Path:
    root.mkdir()
    (root / "manifest.json").write_text(
        json.dumps(
            {"format": manifest_format, "preset": "tiny", "seed": 1, "counts": {}, "config": {}}
        )
    )
    pd.DataFrame(
        {
            "user": ["u1", "u2", "u2"],
            "item": ["i1", "i1", "i2"],
            "timestamp": np.array([100, 200, 300], dtype=np.int64),
            "event": ["view", "like", "share"],
            "value": [np.nan, np.nan, 1.0],
        }
    ).to_parquet(root / "interactions.parquet")
    pd.DataFrame(
        {
            "item": ["i1", "i2"],
            "title": ["t1", "t2"],
            "text": ["x", "y"],
            "tags": ["a|b", ""],
            "category": ["c1", "c2"],
            "author": ["u3", "u1"],
            "created_at": np.array([50, 60], dtype=np.int64),
        }
    ).to_parquet(root / "items.parquet")
    pd.DataFrame(
        {
            "user": ["u1", "u2", "u3"],
            "created_at": np.array([1, 2, 3], dtype=np.int64),
            "interests": ["c1", "c1|c2", ""],
        }
    ).to_parquet(root / "users.parquet")
    pd.DataFrame(
        {
            "follower": ["u1", "u3"],
            "followee": ["u3", "u1"],
            "created_at": np.array([5, 6], dtype=np.int64),
        }
    ).to_parquet(root / "social.parquet")
    (root / "truth").mkdir()
    return root


def test_load_platform(tmp_path: Path) -> None:
    root = _write_platform(tmp_path / "plat")
    ds = load_platform(root)
    assert ds.name == "platform-tiny"
    assert (ds.n_users, ds.n_items, ds.n_interactions, len(ds.social)) == (3, 2, 3, 2)
    assert ds.interactions_frame()["event"].tolist() == ["view", "like", "share"]
    assert ds.interactions.timestamp.tolist() == [100.0, 200.0, 300.0]
    assert list(ds.item_meta.tags) == [("a", "b"), ()]
    assert ds.item_author_index().tolist() == [2, 0]
    assert list(ds.user_meta.interests) == [("c1",), ("c1", "c2"), ()]
    assert detect_format(root) == "platform"
    assert load_source(root).name == "platform-tiny"
    # the same validation as any file: a row error names the Parquet row
    pd.DataFrame({"user": ["u1", "u9"], "item": ["i1", "i1"]}).to_parquet(
        root / "interactions.parquet"
    )
    assert error_of(load_platform, root) == (
        "interactions.parquet, row 2, field 'user': user 'u9' is not in users.parquet"
    )


def test_platform_manifest_is_checked(tmp_path: Path) -> None:
    root = _write_platform(tmp_path / "plat", manifest_format="something-else")
    assert error_of(load_platform, root) == (
        f'{root / "manifest.json"}: expected "format": "serendip-platform", found "something-else"'
    )
    assert detect_format(root) == "parquet"  # still a directory of interactions.parquet & co.


def test_load_source_detects_files_and_directories(tmp_path: Path) -> None:
    csv_path = write(tmp_path, "events.csv", "user,item\nu1,i1\n")
    assert detect_format(csv_path) == "csv"
    ds = load_source(csv_path)
    assert ds.name == "events" and ds.n_interactions == 1
    parquet_path = tmp_path / "events.data"
    pd.DataFrame({"user": ["u1"], "item": ["i1"]}).to_parquet(parquet_path)
    assert detect_format(parquet_path) == "parquet"  # by magic bytes
    assert load_source(parquet_path).n_interactions == 1
    items = write(tmp_path, "catalog.csv", "item,title\ni1,t\ni2,u\n")
    assert load_source(csv_path, items=items).n_items == 2
    folder = tmp_path / "folder"
    folder.mkdir()
    write(folder, "interactions.csv", "user,item\nu1,i1\n")
    write(folder, "items.csv", "item,title\ni1,t\ni2,u\n")
    write(folder, "social.csv", "follower,followee\nu1,u2\n")
    ds = load_source(folder, undirected_social=True)
    assert (ds.name, ds.n_users, ds.n_items, len(ds.social)) == ("folder", 2, 2, 2)
    assert (
        error_of(load_source, folder, format="movielens")
        == f"{folder}: not a MovieLens 100K directory (no u.data)"
    )
    assert error_of(load_source, folder, format="lastfm", items=items) == (
        f"{folder}: items= only applies to the csv and parquet formats, not to lastfm"
    )


def test_movielens_layout_with_line_numbers(tmp_path: Path) -> None:
    root = tmp_path / "ml"
    root.mkdir()
    write(root, "u.data", "1\t10\t5\t881250949\n2\t10\t3\t881250950\n")
    flags = "|".join(["0"] * 19)
    action = "|".join(["0", "1", *["0"] * 15, "1", "0"])  # Action, War
    write(
        root,
        "u.item",
        f"10|Films (1995)|01-Jan-1995||http://x|{action}\n11|Unknown||||{flags}\n",
        encoding="latin-1",
    )
    write(root, "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n")
    ds = load_source(root)
    assert ds.name == "ml-100k"
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (2, 2, 2)
    assert ds.interactions_frame()["event"].tolist() == ["rating", "rating"]
    assert ds.interactions.value.tolist() == [5.0, 3.0]
    assert list(ds.item_meta.tags) == [("Action", "War"), ()]
    assert ds.item_meta.category.tolist() == ["Action", ""]
    assert ds.item_meta.created_at[0] == pd.Timestamp("1995-01-01", tz="UTC").timestamp()
    assert np.isnan(ds.item_meta.created_at[1])
    assert ds.user_meta.attributes["age"].tolist() == [24, 53]
    assert ds.user_meta.attributes["occupation"].tolist() == ["technician", "other"]
    write(root, "u.data", "1\t10\t5\t881250949\n2\t10\tfive\t881250950\n")
    assert (
        error_of(load_movielens, root)
        == "u.data, line 2, field 'rating': cannot parse 'five' as a number"
    )


def test_lastfm_layout(tmp_path: Path) -> None:
    root = tmp_path / "lastfm"
    root.mkdir()
    write(
        root, "user_artists.dat", "userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n3\t51\t5\n"
    )
    write(
        root,
        "artists.dat",
        'id\tname\turl\tpictureURL\n51\t"Weird Al" Yankovic\tu\tp\n52\tSigur Rós\tu\tp\n',
    )
    write(root, "tags.dat", "tagID\ttagValue\n1\tmetal\n2\tcafé\n3\trock\n", encoding="latin-1")
    write(
        root,
        "user_taggedartists.dat",
        "userID\tartistID\ttagID\tday\tmonth\tyear\n"
        "2\t51\t3\t1\t4\t2009\n3\t51\t3\t1\t5\t2009\n3\t51\t2\t1\t5\t2009\n2\t99\t1\t1\t1\t2010\n",
    )
    write(root, "user_friends.dat", "userID\tfriendID\n2\t4\n4\t2\n3\t2\n")
    report = LoadReport()
    ds = load_lastfm(root, report=report)
    assert ds.name == "lastfm-2k"
    assert ds.users.to_list() == ["2", "3", "4"]
    assert ds.item_meta.title.tolist() == ['"Weird Al" Yankovic', "Sigur Rós"]
    assert ds.interactions_frame()["event"].tolist() == ["view"] * 3
    assert ds.interactions.value.tolist() == [13883.0, 11690.0, 5.0]
    assert np.isnan(ds.interactions.timestamp).all()
    assert list(ds.item_meta.tags) == [("rock", "café"), ()]  # most assigned first
    assert ds.item_meta.category.tolist() == ["rock", ""]
    tags = ds.extras["tag_assignments"]
    assert tags.columns.tolist() == ["user", "item", "tag_id", "tag", "timestamp"]
    assert len(tags) == 4  # the assignment to an artist missing from artists.dat is kept
    assert tags["timestamp"].iloc[0] == pd.Timestamp("2009-04-01", tz="UTC").timestamp()
    edges = sorted(zip(*(ds.social_frame()[c] for c in ("follower", "followee")), strict=True))
    assert edges == [("2", "3"), ("2", "4"), ("3", "2"), ("4", "2")]
    assert report.dropped() == 0
    write(root, "user_artists.dat", "userID\tartistID\tweight\n2\t51\t-3\n")
    assert error_of(load_lastfm, root) == (
        "user_artists.dat, line 2, field 'weight': negative value '-3' (must be >= 0)"
    )


# --------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_movielens_100k() -> None:
    ds = load_source(shared_data("ml-100k"))
    assert ds.name == "ml-100k"
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (943, 1682, 100_000)
    assert len(ds.social) == 0
    assert set(np.unique(ds.interactions.value).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert (ds.interactions.event == EVENT_CODES["rating"]).all()
    assert not np.isnan(ds.interactions.timestamp).any()
    first = ds.items.index("1")
    assert ds.item_meta.title[first] == "Toy Story (1995)"
    assert ds.item_meta.tags[first] == ("Animation", "Children's", "Comedy")
    assert ds.item_meta.category[first] == "Animation"
    assert ds.item_meta.created_at[first] == pd.Timestamp("1995-01-01", tz="UTC").timestamp()
    assert np.isnan(ds.item_meta.created_at[ds.items.index("267")])  # "unknown", no date
    assert set(ds.user_meta.attributes) == {"age", "gender", "occupation", "zip"}
    assert ds.user_meta.attributes["age"][ds.users.index("1")] == 24


@pytest.mark.realdata
def test_real_lastfm_2k() -> None:
    ds = load_source(shared_data("lastfm-2k"))
    assert ds.name == "lastfm-2k"
    assert (ds.n_users, ds.n_items, ds.n_interactions) == (1892, 17_632, 92_834)
    assert len(ds.social) == 25_434
    adjacency = ds.social.adjacency(ds.n_users)
    assert abs(adjacency - adjacency.T).sum() == 0  # undirected
    assert (ds.interactions.event == EVENT_CODES["view"]).all()
    assert ds.interactions.value.min() >= 1
    tags = ds.extras["tag_assignments"]
    assert len(tags) == 186_479
    assert tags["timestamp"].notna().all()
    assert max(len(t) for t in ds.item_meta.tags) == 10
    assert ds.item_meta.title[ds.items.index("1")] == "MALICE MIZER"
