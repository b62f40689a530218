"""Parameter parsing (sivae.params): the one implementation every section and notebook uses."""
import pytest

from sivae.errors import ConfigError
from sivae.params import parse_bool, parse_int, parse_list, parse_numbers, read_section, seeds_from, split_items


def test_numbers_lists_and_bounds():
    assert parse_numbers("margins", "0.1, 1,50") == (0.1, 1.0, 50.0)
    assert parse_numbers("beta_negs", 0.9) == (0.9,)
    assert parse_numbers("gammas", "0.0, 0.1,0.5") == (0.0, 0.1, 0.5)
    assert parse_numbers("enc_channels", "64, 128,256,256", integer=True, positive=True) == (64, 128, 256, 256)
    assert parse_numbers("lr_milestones", "", nonnegative=True, at_most=1, allow_empty=True) == ()
    assert parse_numbers("lr_milestones", "0.6,0.8", nonnegative=True, at_most=1) == (0.6, 0.8)


@pytest.mark.parametrize("value, kw, message", [
    ("", dict(), "margins is empty"),
    ("0,1", dict(positive=True), "must be > 0"),
    ("-1", dict(nonnegative=True), "non-negative"),
    ("a", dict(), "comma-separated numbers"),
    ("nan", dict(), "finite"),
    ("8,x", dict(integer=True), "comma-separated integers"),
    ("8.5", dict(integer=True), "integers"),
    ("0.5,1.5", dict(at_most=1), "at most 1"),
])
def test_bad_numbers_name_the_parameter(value, kw, message):
    with pytest.raises(ConfigError, match=message) as e:
        parse_numbers("margins", value, **kw)
    assert "margins" in str(e.value)


def test_lists_booleans_seeds_and_ints():
    assert split_items("x", " a, b ,,c") == ["a", "b", "c"]
    assert parse_list("datasets", "all", ["a", "b"]) == ["a", "b"]
    with pytest.raises(ConfigError, match="unknown datasets 'z'"):
        parse_list("datasets", "a,z", ["a", "b"])
    with pytest.raises(ConfigError, match="empty"):
        parse_list("datasets", " , ", ["a"])
    assert parse_bool("f", "false") is False and parse_bool("f", " True ") is True and parse_bool("f", True)
    with pytest.raises(ConfigError):
        parse_bool("f", "0")
    assert seeds_from(3, 2) == [3, 4]
    for bad in (0, -1, 1.5, "2", True):
        with pytest.raises(ConfigError, match="n_seeds"):
            seeds_from(0, bad)
    assert parse_int("batch_size", "32") == 32
    for bad in ("0", "x", 2.5, float("inf"), 10**12):
        with pytest.raises(ConfigError, match="batch_size"):
            parse_int("batch_size", bad, 1, 10**6)


@pytest.mark.slow
@pytest.mark.parametrize("nb", sorted(p.name for p in (__import__("nbutil").ROOT / "notebooks").glob("[0-9][0-9]_*.py")))
def test_papermill_reads_every_parameter_of_every_notebook(nb, tmp_path):
    """papermill parses the parameters cell line by line; a comment it cannot read (an `=` in it) makes it warn
    "Unable to parse line" and treat the parameter as unknown."""
    import jupytext
    from nbutil import ROOT, notebook_parameters
    from papermill.inspection import inspect_notebook
    path = tmp_path / "nb.ipynb"
    jupytext.write(jupytext.read(ROOT / "notebooks" / nb), path)
    assert set(inspect_notebook(str(path))) == set(notebook_parameters(ROOT / "notebooks" / nb))


def test_read_section_names_the_file_and_what_is_wrong(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("base:\n  seed: 1\ntoy2d:\n  n_iter: 5\n")
    assert read_section(p, "toy2d") == ({"seed": 1}, {"n_iter": 5})
    for text, match in (("toy2d: [1, 2]\n", "must be a mapping"), ("- 1\n", "must hold sections"),
                        ("toy2d: {a: [\n", "not valid YAML"), ("other: {}\n", "no section 'toy2d'")):
        p.write_text(text)
        with pytest.raises(ConfigError, match=match):
            read_section(p, "toy2d")
    with pytest.raises(ConfigError, match="does not exist"):
        read_section(tmp_path / "none.yaml", "toy2d")
    p.write_text("toy2d: !!python/object/apply:os.system ['echo hacked']\n")   # loading never executes code
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_section(p, "toy2d")
