"""What the command line owes a user whose setup, options or data are wrong: one line naming the
setting, option or file and the fix, exit status 2, no traceback, no module path, nothing from the
data that a terminal would interpret, and nothing written outside the home."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from exp_dagster.cli import main
from exp_dagster.resources import Warehouse, WarehouseDiskFullError
from exp_dagster.warehouse.landing import LogSource, experiment_ids
from tests.faults.corpus import END, EXPERIMENT_ID, START, events, exposures, hive, write_catalog


def _landing(root: Path) -> Path:
    """A clean corpus landing zone (hive Parquet, every day of the window) and its catalog;
    returns the spec's path."""
    day = START
    while day <= END:
        hive(root, "exposures", exposures(day, [f"u{day.day}-{i:03d}" for i in range(60)]), day=day)
        hive(root, "events", events(day, [f"u{day.day}-{i:03d}" for i in range(60)]), day=day)
        day += dt.timedelta(days=1)
    return write_catalog(root / "catalog")


def _args(root: Path, *extra: str) -> list[str]:
    return [
        "analyze",
        "--experiment",
        str(root / "catalog" / "experiments" / f"{EXPERIMENT_ID}.yaml"),
        "--exposures",
        str(root / "exposures"),
        "--events",
        str(root / "events"),
        *extra,
    ]


def _cli(
    args: list[str], env: dict[str, str] | None = None, home: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``exp-dagster`` in a process of its own, with only the given EXP_DAGSTER_* settings."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("EXP_DAGSTER_")}
    if home is not None:
        clean["HOME"] = str(home)
        for name in ("XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "MPLCONFIGDIR"):
            clean.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "exp_dagster.cli", *args],
        capture_output=True,
        text=True,
        env={**clean, **(env or {})},
        timeout=600,
        check=False,
    )


def _one_line_error(stderr: str, *phrases: str) -> str:
    """The error: the one line of stderr that is not run progress, with every phrase in it."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if not line.startswith("[")]
    assert len(lines) == 1, stderr
    (line,) = lines
    assert line.startswith("error: "), line
    for phrase in phrases:
        assert phrase in line, line
    for internal in ("exp_dagster.", "_duckdb.", "dagster._"):
        assert internal not in line, line  # no module path of a class or a frame
    return line


def _no_progress(stderr: str) -> None:
    """Nothing ran: no "[ 1/8] ..." progress line before the error."""
    assert not any(line.startswith("[") for line in stderr.splitlines()), stderr


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli_errors")
    _landing(root)
    (root / "a_file").write_text("not a folder\n")
    (root / "a_folder").mkdir()
    return root


# (EXP_DAGSTER_ variable, its value ({root}: the corpus folder), phrases of the message)
BAD_SETTINGS: list[tuple[str, str, tuple[str, ...]]] = [
    ("DUCKDB_THREADS", "two", ("EXP_DAGSTER_DUCKDB_THREADS='two'", "positive whole number")),
    ("DUCKDB_MEMORY_LIMIT", "lots", ("EXP_DAGSTER_DUCKDB_MEMORY_LIMIT='lots'", "e.g. 1GB")),
    ("DUCKDB_TEMP_DIR", "{root}/a_file", ("EXP_DAGSTER_DUCKDB_TEMP_DIR=", "is a file")),
    ("DUCKDB_TEMP_DIR", "{root}/a_file/spill", ("EXP_DAGSTER_DUCKDB_TEMP_DIR=", "is a file")),
    ("SENSOR_INTERVAL", "0", ("EXP_DAGSTER_SENSOR_INTERVAL='0'", "seconds")),
    ("FIRST_DATE", "yesterday", ("EXP_DAGSTER_FIRST_DATE='yesterday'", "YYYY-MM-DD")),
    ("HOME", "{root}/a_file", ("EXP_DAGSTER_HOME=", "is a file, not a folder")),
    ("WAREHOUSE", "{root}/a_folder", ("EXP_DAGSTER_WAREHOUSE=", "is a folder")),
    ("REPORTS", "{root}/a_file", ("EXP_DAGSTER_REPORTS=", "is a file")),
    ("CATALOG", "{root}/no_such_catalog", ("EXP_DAGSTER_CATALOG=", "not a folder")),
]


@pytest.mark.parametrize(
    ("name", "value", "phrases"),
    BAD_SETTINGS,
    ids=[f"{name}={value.replace('{root}/', '')}" for name, value, _ in BAD_SETTINGS],
)
def test_a_bad_setting_is_one_line_naming_the_variable(
    corpus: Path, name: str, value: str, phrases: tuple[str, ...]
) -> None:
    result = _cli(_args(corpus), {f"EXP_DAGSTER_{name}": value.format(root=corpus)})
    assert result.returncode == 2, result.stderr
    _one_line_error(result.stderr, *phrases)
    assert not result.stdout


@pytest.mark.parametrize(
    ("extra", "phrases"),
    [
        (("--home", "{root}/a_file"), ("--home", "is a file, not a folder")),
        (("--home", "{root}/a_file/work"), ("--home", "a_file is a file")),
        (("--json", "{root}/missing/out.json"), ("--json", "missing does not exist")),
        (("--json", "{root}/a_folder"), ("--json", "is a folder")),
    ],
    ids=["home-is-a-file", "home-under-a-file", "json-in-a-missing-folder", "json-is-a-folder"],
)
def test_unusable_paths_are_refused_before_the_run(
    corpus: Path, extra: tuple[str, str], phrases: tuple[str, ...], capsys: pytest.CaptureFixture
) -> None:
    option, value = extra
    assert main(_args(corpus, option, value.format(root=corpus))) == 2
    captured = capsys.readouterr()
    # One line and no progress: nothing ran, so a run of minutes is not lost at its end.
    _one_line_error(captured.err, *phrases)
    _no_progress(captured.err)
    assert not captured.out


def test_the_memory_limit_error_names_the_variable_not_the_input(corpus: Path) -> None:
    result = _cli(_args(corpus), {"EXP_DAGSTER_DUCKDB_MEMORY_LIMIT": "1MB"})
    assert result.returncode == 2, result.stderr
    line = _one_line_error(result.stderr, "out of memory", "EXP_DAGSTER_DUCKDB_MEMORY_LIMIT")
    assert "cannot be read" not in line and "Re-export" not in line  # the logs are fine


def test_a_full_spill_disk_says_it_is_the_disk(tmp_path: Path) -> None:
    """A sort that must spill, with the spill folder's room capped at 1 MB (what DuckDB does
    when the disk under it is full): the error says the disk, where, and that the input is fine."""
    warehouse = Warehouse(database=str(tmp_path / "warehouse.duckdb"), memory_limit="50MB")
    with pytest.raises(WarehouseDiskFullError) as error, warehouse.connect() as conn:
        conn.execute("SET max_temp_directory_size = '1MB'")
        conn.execute(
            "CREATE TABLE sorted AS SELECT i, repeat('x', 50) || i AS s "
            "FROM range(5000000) AS r(i) ORDER BY s DESC"
        )
    message = str(error.value)
    assert message.startswith("the disk is full")
    assert f"{tmp_path / 'warehouse.duckdb'}.tmp" in message
    assert "EXP_DAGSTER_DUCKDB_TEMP_DIR" in message and "not at fault" in message
    assert "\n" not in message


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_json_output_on_a_full_disk_says_it_is_the_disk(
    corpus: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(_args(corpus, "--json", "/dev/full")) == 2
    captured = capsys.readouterr()
    assert "Decision:" in captured.out  # the results were printed before the write failed
    _one_line_error(captured.err, "the disk is full", "/dev/full", "No space left on device")


def test_an_experiment_id_found_in_no_row_lists_the_ids_found(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _landing(tmp_path)
    for folder in (tmp_path / "exposures").iterdir():  # every row says another id
        frame = exposures(dt.date.fromisoformat(folder.name[5:]))
        frame["experiment_id"] = ["fault-test"] * 150 + ["other\x1b[2J"] * 50
        frame.to_parquet(folder / "part-0.parquet", index=False)
    assert main(_args(tmp_path)) == 2
    captured = capsys.readouterr()
    _one_line_error(
        captured.err,
        f"no exposure has experiment_id '{EXPERIMENT_ID}'",
        "'fault-test' (600 rows), 'other\\x1b[2J' (200 rows)",
        "Did you mean 'fault-test'?",
    )
    assert "\x1b" not in captured.err
    _no_progress(captured.err)


def test_control_characters_from_the_data_never_reach_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """A file whose name holds an escape sequence and a newline, and a column named with one,
    lacking a required column: the error stays one line, shows the characters as escapes, and
    its "Found:" list holds the file's columns, not the reader's ``filename``."""
    _landing(tmp_path)
    for folder in (tmp_path / "exposures").iterdir():
        frame = exposures(dt.date.fromisoformat(folder.name[5:]))
        frame = frame.rename(columns={"variant": "arm\x1b[31m"})
        (folder / "part-0.parquet").unlink()
        frame.to_parquet(folder / "part\x1b]0;owned\x07\n-0.parquet", index=False)
    assert main(_args(tmp_path)) == 2
    captured = capsys.readouterr()
    line = _one_line_error(
        captured.err,
        "part\\x1b]0;owned\\x07\\n-0.parquet",
        "missing column(s) variant",
        "Found: experiment_id, unit_id, arm\\x1b[31m, exposed_at, platform.",
    )
    assert "\x1b" not in captured.err and "\x07" not in captured.err
    assert "filename" not in line


def test_nothing_is_written_in_the_users_home_folder(tmp_path: Path) -> None:
    """A whole run with HOME an empty folder and no XDG or matplotlib settings: the report's
    charts cache their fonts inside the exp_dagster home, and HOME stays empty."""
    _landing(tmp_path)
    user_home = tmp_path / "user_home"
    user_home.mkdir()
    work = tmp_path / "work"
    result = _cli(
        _args(tmp_path, "--home", str(work)),
        {"EXP_DAGSTER_HOME": str(tmp_path / "exp_home")},
        home=user_home,
    )
    assert result.returncode == 0, result.stderr
    assert list((work / "reports").rglob("*.html"))  # charts were drawn
    assert list((tmp_path / "exp_home" / "cache" / "matplotlib").iterdir())
    assert sorted(str(p.relative_to(user_home)) for p in user_home.rglob("*")) == []


def test_an_unexpected_error_is_one_line_without_a_traceback(
    corpus: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (here a query that fails for a reason no check foresaw) is one line with the
    error's class and how to see where it came from; with EXP_DAGSTER_VERBOSE the traceback."""

    def broken(*_: object) -> None:
        raise duckdb.InternalException("INTERNAL Error: something no check foresaw")

    monkeypatch.setattr("exp_dagster.cli._check_experiment_id", broken)
    monkeypatch.delenv("EXP_DAGSTER_VERBOSE", raising=False)
    assert main(_args(corpus)) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("error: unexpected InternalException: INTERNAL Error: something")
    assert "EXP_DAGSTER_VERBOSE=1" in err
    monkeypatch.setenv("EXP_DAGSTER_VERBOSE", "1")
    with pytest.raises(duckdb.InternalException):
        main(_args(corpus))


def test_checking_the_experiment_id_reads_only_until_the_id_is_found(tmp_path: Path) -> None:
    """The window's first folder holds the id, so a later (here corrupt) folder is not read;
    listing every id reads everything (and gives up on the corrupt file, which the run names)."""
    _landing(tmp_path)
    late = tmp_path / "exposures" / "date=2026-06-01"
    late.mkdir()
    (late / "part-0.parquet").write_bytes(b"PAR1 truncated")
    source = LogSource("exposures", tmp_path / "exposures")
    conn = duckdb.connect()
    found = experiment_ids(conn, source, stop_at=EXPERIMENT_ID, first_days=[START])
    assert found == {EXPERIMENT_ID: 60}
    assert experiment_ids(conn, source) is None
