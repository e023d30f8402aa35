import ast
import copy
import dataclasses
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest
import yaml

from pipeline.cli import UserError
from pipeline.params import SECTIONS, ParamsError, load_params, model_parameters, parse_params

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def raw():
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_project_params_are_the_chapters_defaults():
    params = load_params(ROOT / "params.yaml")
    assert (params.vocab.num_words, params.vocab.skip_top) == (10000, 0)
    model = params.model
    assert (model.hidden_layers, model.units, model.activation) == (2, 16, "relu")
    assert (model.optimizer, model.learning_rate, model.loss, model.batch_size) == (
        "rmsprop", 0.001, "binary_crossentropy", 512,
    )
    assert (params.validate.val_size, params.validate.epochs, params.train.epochs) == (10000, 20, 4)


def test_project_params_leave_every_improvement_off():
    params = load_params(ROOT / "params.yaml")
    assert params.vocab.ngram_range == (1, 1)
    assert params.vectorize.weighting == "binary"
    assert (params.model.dropout, params.model.l2, params.model.nb_scaling) == (0.0, 0.0, False)


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("vocab", "num_words", 3, r"vocab\.num_words = 3 is not allowed; expected an integer from 4 .* to 1,000,000"),
        ("vocab", "num_words", "10000", r"vocab\.num_words = '10000' is not allowed"),
        ("vocab", "skip_top", 9996, r"vocab\.skip_top = 9996 would leave no word"),
        ("model", "units", True, r"model\.units = True is not allowed; expected an integer from 1 to 65,536"),
        ("model", "activation", "relu6", r"model\.activation = 'relu6' is not allowed; expected one of relu, tanh"),
        ("model", "optimizer", "adagrad", r"model\.optimizer = 'adagrad' .*one of rmsprop, adam, sgd"),
        ("model", "loss", "hinge", r"model\.loss = 'hinge' .*one of binary_crossentropy, mse"),
        ("model", "learning_rate", 0, r"model\.learning_rate = 0 .*a finite number > 0"),
        ("validate", "epochs", 0, r"validate\.epochs = 0 .*an integer from 1 to 1,000"),
        ("validate", "val_size", -5, r"validate\.val_size = -5"),
        ("train", "epochs", "last", r"train\.epochs = 'last' .*an integer from 1 to 1,000, or best"),
        (
            "vocab",
            "ngram_range",
            [2, 1],
            r"vocab\.ngram_range = \[2, 1\] .*\[min_n, max_n\] with 1 <= min_n <= max_n <= 3",
        ),
        ("vocab", "ngram_range", 2, r"vocab\.ngram_range = 2 is not allowed"),
        ("vocab", "ngram_range", [1, 4], r"vocab\.ngram_range = \[1, 4\] is not allowed"),
        ("vectorize", "weighting", "bm25", r"vectorize\.weighting = 'bm25' .*one of binary, count, tfidf"),
        ("model", "dropout", 1, r"model\.dropout = 1 .*a number from 0 to less than 1"),
        ("model", "l2", -0.1, r"model\.l2 = -0\.1 .*a finite number >= 0"),
        ("model", "nb_scaling", "yes", r"model\.nb_scaling = 'yes' .*true or false"),
        # upper bounds: values no run on a 1 GB stage survives are refused before TensorFlow loads
        ("model", "units", 1_000_000_000, r"model\.units = 1000000000 is not allowed; expected an integer from 1 to"),
        ("model", "units", 0, r"model\.units = 0 is not allowed"),
        ("model", "hidden_layers", 10_000, r"model\.hidden_layers = 10000 is not allowed; .* to 64"),
        ("model", "batch_size", 10**9, r"model\.batch_size = 1000000000 is not allowed"),
        ("vocab", "num_words", 10**12, r"vocab\.num_words = 1000000000000 is not allowed"),
        ("validate", "epochs", 10**9, r"validate\.epochs = 1000000000 is not allowed"),
        ("train", "epochs", 10**9, r"train\.epochs = 1000000000 is not allowed"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(raw, section, key, value, message):
    raw[section][key] = value
    with pytest.raises(ParamsError, match=message):
        parse_params(raw)


def test_a_model_larger_than_a_stages_memory_budget_is_refused_naming_the_keys(raw):
    raw["vocab"]["num_words"] = 1_000_000
    raw["model"]["units"] = 64  # each within its own bound, together 64 million weights
    with pytest.raises(ParamsError, match=r"vocab\.num_words = 1,000,000 .* model\.units = 64 makes a model of "
                       r"64,\d{3},\d{3} weights; at most 53,687,091 .* lower model\.units or vocab\.num_words$"):
        parse_params(raw)
    raw["vocab"]["num_words"] = 10000
    raw["model"].update(units=1024, batch_size=65536)
    with pytest.raises(ParamsError, match=r"model\.batch_size = 65,536 .* activations per batch"):
        parse_params(raw)


def test_the_model_size_bound_counts_the_weights_keras_builds():
    # the chapter's model: 10000*16 + 16, 16*16 + 16, 16 + 1 (summary() of listing 3-3)
    chapter = parse_params(yaml.safe_load((ROOT / "params.yaml").read_text()))
    assert model_parameters(10000, chapter.model) == 160_016 + 272 + 17
    logistic = dataclasses.replace(chapter.model, hidden_layers=0)
    assert model_parameters(10000, logistic) == 10_001


def test_params_yaml_must_be_a_small_regular_file(tmp_path):
    for path, message in (
        (tmp_path, r"is a directory, not a params file"),
        (Path("/dev/zero"), r"/dev/zero is a character device, not a params file: expected a regular file"),
    ):
        with pytest.raises(UserError, match=message):
            load_params(path)
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # no writer: opening it must not wait for one
    with pytest.raises(UserError, match=r"is a FIFO"):
        load_params(fifo)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (2 << 20))
    with pytest.raises(UserError, match=r"has 2,097,152 bytes; a params file may have at most 1 MB"):
        load_params(big)
    deep = tmp_path / "deep.yaml"
    deep.write_text("vocab: " + "[" * 50_000 + "]" * 50_000 + "\n")
    with pytest.raises(ParamsError, match=r"nested too deeply"):
        load_params(deep)


def test_unknown_key_suggests_the_closest(raw):
    raw["vocab"]["num_word"] = raw["vocab"].pop("num_words")
    with pytest.raises(ParamsError, match=r"unknown key vocab\.num_word \(did you mean num_words\?\)"):
        parse_params(raw)


def test_missing_key_and_section_are_named(raw):
    broken = copy.deepcopy(raw)
    del broken["model"]["seed"]
    with pytest.raises(ParamsError, match=r"missing key model\.seed"):
        parse_params(broken)
    del raw["train"]
    with pytest.raises(ParamsError, match=r"missing key train$"):
        parse_params(raw)


def test_train_epochs_accepts_best_and_learning_rate_accepts_integers(raw):
    raw["train"]["epochs"] = "best"
    raw["model"]["learning_rate"] = 1
    params = parse_params(raw)
    assert params.train.epochs == "best"
    assert params.model.learning_rate == 1.0 and isinstance(params.model.learning_rate, float)


def test_invalid_yaml_is_one_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("vocab:\n  num_words: [10000\n")
    with pytest.raises(ParamsError, match=r"is not valid YAML at line \d+$"):
        load_params(path)


# dvc.yaml must describe the code exactly, or DVC's caching would be wrong.

def _stages():
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def _stage_params(stage):
    """Every params key a stage tracks; a section's name tracks all its keys."""
    tracked = set()
    for entry in _stages()[stage].get("params", []):
        tracked |= _keys(entry) if entry in SECTIONS else {entry}
    return tracked


def _keys(section):
    return {f"{section}.{spec.name}" for spec in fields(SECTIONS[section])}


def test_dvc_yaml_lists_every_key_of_each_section_a_stage_reads():
    assert _stage_params("download") == _keys("download")
    assert _stage_params("vocab") == _keys("vocab")
    # train makes the validation run and the final fit, and records the encoding params in
    # the inference bundle it writes
    assert _stage_params("train") == (
        _keys("model") | _keys("validate") | _keys("train") | _keys("vocab") | _keys("vectorize")
    )
    assert _stage_params("vectorize") == _keys("vectorize")
    for stage in ("evaluate", "plot"):
        assert _stage_params(stage) == set()


def _module_file(name: str) -> Path:
    path = ROOT / "pipeline" / name.replace(".", "/")
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _pipeline_imports(module: str) -> set[str]:
    """Every pipeline file a stage module imports, directly or through another. A package's
    modules all count: pipeline/sources/ is chosen from by params, at run time."""
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        if path.name == "__init__.py":
            todo += [f"{name}.{file.stem}" for file in path.parent.glob("*.py") if file.stem != "__init__"]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "pipeline":
                package = node.module.removeprefix("pipeline").removeprefix(".")
                for alias in node.names:  # a module of the package, or a name defined in it
                    module = f"{package}.{alias.name}".lstrip(".")
                    todo.append(module if _module_file(module).exists() else package)
    return {_module_file(name).relative_to(ROOT).as_posix() for name in seen}


@pytest.mark.parametrize("stage", list(_stages()))
def test_each_stage_depends_on_exactly_the_code_it_runs(stage):
    code_deps = {d for d in _stages()[stage]["deps"] if d.startswith("pipeline/")}
    module = _stages()[stage]["cmd"].split("python -m pipeline.")[1]
    assert code_deps == _pipeline_imports(module)


@pytest.mark.parametrize("stage", ["stages.download", "stages.vocab", "stages.vectorize", "stages.evaluate",
                                   "stages.plot", "commands.predict", "inference"])
def test_stages_that_train_nothing_never_import_tensorflow(stage):
    check = f"import sys, pipeline.{stage}; sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", check], cwd=ROOT).returncode == 0


@pytest.mark.parametrize("value, message", [
    ("1" + "0" * 400, r"model\.learning_rate = 1000.*0000 is not allowed; expected a finite number > 0"),
    (".inf", r"model\.learning_rate = inf is not allowed; expected a finite number > 0"),
    (".nan", r"model\.learning_rate = nan is not allowed"),
    ("2001-13-45", r"has a value that cannot be read \('month must be in 1\.\.12'\)"),
    ("!!int 'abc'", r"has a value that cannot be read"),
    ("9" * 5000, r"has a value that cannot be read \('Exceeds the limit \(4300 dig"),
])
def test_values_yaml_cannot_build_or_no_fit_survives_are_one_line(tmp_path, value, message):
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text().replace("learning_rate: 0.001", f"learning_rate: {value}"))
    with pytest.raises(UserError, match=message) as error:
        load_params(path)
    assert "\n" not in str(error.value) and len(str(error.value)) < 300


def test_an_alias_bomb_is_named_in_a_short_line(tmp_path):
    # ten levels of nine references: 9**10 leaves, in 300 bytes of YAML
    bomb = "[&a0 [x, x, x, x, x, x, x, x, x]" + "".join(
        f", &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 10)) + "]"
    path = tmp_path / "params.yaml"
    path.write_text((ROOT / "params.yaml").read_text().replace("units: 16", f"units: {bomb}"))
    with pytest.raises(ParamsError, match=r"^params\.yaml: model\.units = \[\['x', 'x', 'x', 'x', \.\.\.\], ") as error:
        load_params(path)
    assert len(str(error.value)) < 250
