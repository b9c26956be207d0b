"""The parsed-TOML cache of pkcsf.core.tomlio (issue 11): same documents as parsing afresh, a private copy
for every caller, and an edited file parsed again."""
import datetime as dt
from pathlib import Path

import pytest

from pkcsf.core import tomlio
from pkcsf.core.errors import PkcsfError

ROOT = Path(__file__).resolve().parent.parent


def test_cached_documents_equal_a_fresh_parse():
    files = sorted((ROOT / "parameters").rglob("*.toml"))[:40] + sorted((ROOT / "models").rglob("*.toml"))[:10]
    assert files
    for f in files:
        first = tomlio.read(f)
        again = tomlio.read(f)                       # from the cache
        assert first == again == tomlio.tomllib.loads(f.read_text(encoding="utf-8").lstrip("\ufeff"))


def test_every_caller_gets_its_own_copy():
    text = 'a = 1\nd = 1979-05-27\n[t]\nxs = [1, [2, 3]]\n[[arr]]\nk = "v"\n'
    doc = tomlio.loads(text)
    doc["a"] = 99
    doc["t"]["xs"][1].append(4)
    doc["arr"][0]["k"] = "changed"
    doc["new"] = True
    again = tomlio.loads(text)
    assert again == {"a": 1, "d": dt.date(1979, 5, 27), "t": {"xs": [1, [2, 3]]}, "arr": [{"k": "v"}]}
    assert again["t"] is not doc["t"] and again["t"]["xs"] is not doc["t"]["xs"]


def test_an_edited_file_is_parsed_again(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("x = 1\n")
    assert tomlio.read(f) == {"x": 1}
    f.write_text("x = 2\n")                          # same size, maybe the same time stamp: the text decides
    assert tomlio.read(f) == {"x": 2}


def test_invalid_text_still_raises_every_time():
    for _ in range(2):
        with pytest.raises(PkcsfError, match="is not valid TOML"):
            tomlio.loads("a = ")


def test_the_cache_is_bounded():
    tomlio.clear_cache()
    for k in range(tomlio._CACHE_ENTRIES + 20):
        tomlio.loads(f"k = {k}\n")
    assert len(tomlio._CACHE) == tomlio._CACHE_ENTRIES
    tomlio.clear_cache()
    assert not tomlio._CACHE


def test_expressions_are_parsed_once_per_text_and_errors_still_name_their_field():
    from pkcsf.core.errors import ModelError
    from pkcsf.engine.expressions import Expression

    a = Expression.parse("CL * (WT / 70) ** 0.75")
    assert Expression.parse("CL * (WT / 70) ** 0.75") is a          # cached: the same immutable object
    for field in ("first", "second"):
        with pytest.raises(ModelError, match=field):
            Expression.parse("CL *", field=field)
