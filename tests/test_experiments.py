import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.cli import UserError
from pipeline.commands import experiments
from pipeline.params import parse_params

ROOT = Path(__file__).resolve().parents[1]


def apply(raw: dict, changes: dict) -> dict:
    """What `dvc exp run -S key=value` does to params.yaml."""
    changed = copy.deepcopy(raw)
    for key, value in changes.items():
        section, name = key.split(".")
        changed[section][name] = yaml.safe_load(str(value))
    return changed


def test_each_chapter_variation_changes_one_valid_param_of_the_baseline():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    baseline = parse_params(raw)
    for changes in experiments.CHAPTER_VARIATIONS.values():
        assert len(changes) == 1
        varied = parse_params(apply(raw, changes))
        assert varied != baseline


def test_the_best_configuration_is_valid_and_uses_the_improvements():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    best = parse_params(apply(raw, experiments.BEST[1]))
    assert best.vocab.ngram_range == (1, 2) and best.model.nb_scaling and best.train.epochs == "best"


def test_set_args_are_dvc_set_options():
    assert experiments.set_args({"model.units": 32, "model.loss": "mse"}) == [
        "-S", "model.units=32", "-S", "model.loss=mse",
    ]


def test_table_has_a_row_per_experiment_and_the_timed_one_has_its_time():
    row = {
        "test.accuracy": 0.88584, "test.loss": 0.2878, "validation.best_epoch": 4,
        "validation.val_accuracy_at_best": 0.89,
    }
    name = experiments.BEST[0]
    table = experiments.markdown_table(
        {"baseline (the chapter)": row, "ch-32-units": row, name: row},
        {"ch-32-units": {"model.units": 32}, name: {"model.nb_scaling": "true"}},
        best_seconds=61.4,
    )
    lines = table.splitlines()
    assert len(lines) == 2 + 3
    assert lines[2] == "| baseline (the chapter) | — | 0.8858 | 0.2878 | 4 | 0.8900 | — |"
    assert lines[3].startswith("| ch-32-units | `model.units=32` | 0.8858 |")
    assert lines[4].endswith("| 61 s |")


def test_push_names_the_git_remote_and_is_off_by_default():
    assert experiments.parse_args([]).push is None
    assert experiments.parse_args(["--push", "origin"]).push == "origin"


def test_waiting_reads_again_when_dvc_could_not_list_the_experiments_and_gives_up_in_one_line(monkeypatch):
    unreadable = experiments.UnreadableStates("NotDvcRepoError: '.dvc/tmp/exps/tmp1' is not a DVC repository")
    answers = iter([unreadable, {"a": "Success"}])

    def states(names):
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(experiments, "experiment_states", states)
    monkeypatch.setattr(experiments, "POLL_SECONDS", 0)
    experiments.wait_for_queue(["a"])  # returns once the second reading shows it done
    assert next(answers, None) is None

    def never(names):
        raise unreadable

    monkeypatch.setattr(experiments, "experiment_states", never)
    monkeypatch.setattr(experiments, "UNLISTED_SECONDS", 0)
    with pytest.raises(UserError, match=r"^cannot read the experiments' states: NotDvcRepoError: .* repository$"):
        experiments.wait_for_queue(["a"])


def test_states_are_read_from_dvc_in_a_child_process(tmp_path_factory, monkeypatch):
    """In a DVC project without experiments nothing is listed; outside any project the
    reading fails, with the last line DVC printed."""
    project = tmp_path_factory.mktemp("project")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=project, check=True)
    monkeypatch.chdir(project)
    assert experiments.experiment_states(["a"]) == {}
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    with pytest.raises(experiments.UnreadableStates, match=r"^\S.*Error"):
        experiments.experiment_states(["a"])
