import pytest

from tsrobust.params import PROFILES, Setting, resolve

SETTINGS = {
    "epochs": Setting(int, smoke=2, gpu=50, paper=300, min=0, doc="training epochs"),
    "lr": Setting(float, smoke=0.1, gpu=0.05, paper=0.01, min=0.0, max=10.0),
    "norm": Setting(str, smoke="linf", gpu="linf", paper="l2", choices=("linf", "l2")),
    "widths": Setting(tuple, smoke=(4, 8), gpu=(64, 64), paper=(64, 64), min=1),
}


def test_profile_defaults_and_overrides():
    for profile in PROFILES:
        cfg = resolve(SETTINGS, profile=profile, seed=0)
        assert cfg.epochs == SETTINGS["epochs"].value(profile)
    cfg = resolve(SETTINGS, profile="smoke", seed=3, epochs=7, lr=1, widths=[2, 3])
    assert (cfg.epochs, cfg.lr, cfg.widths, cfg.seed) == (7, 1.0, (2, 3), 3)
    assert isinstance(cfg.lr, float)
    assert cfg.as_dict()["widths"] == [2, 3]


def test_none_means_profile_value():
    assert resolve(SETTINGS, profile="paper", seed=0, epochs=None).epochs == 300


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(profile="fast"), ["'profile'", "smoke, cpu, gpu, paper"]),
        (dict(epochs=-1), ["'epochs'", "≥ 0"]),
        (dict(epochs=2.5), ["'epochs'", "int"]),
        (dict(epochs=True), ["'epochs'", "int"]),
        (dict(lr=11.0), ["'lr'", "≤ 10"]),
        (dict(norm="l1"), ["'norm'", "'linf', 'l2'"]),
        (dict(widths=(4, 0)), ["'widths'", "≥ 1"]),
        (dict(seed=-2), ["'seed'", "≥ 0"]),
        (dict(seed="0"), ["'seed'", "int"]),
        (dict(epoch=3), ["'epoch'", "epochs"]),
    ],
)
def test_bad_parameters_fail_with_a_message(kwargs, words):
    args = dict(profile="smoke", seed=0)
    args.update(kwargs)
    with pytest.raises(ValueError) as err:
        resolve(SETTINGS, **args)
    for word in words:
        assert word in str(err.value)


def test_config_is_read_only():
    cfg = resolve(SETTINGS, profile="smoke", seed=0)
    with pytest.raises(AttributeError):
        cfg.epochs = 5
    with pytest.raises(AttributeError, match="known"):
        cfg.nonexistent


def test_cpu_profile_takes_its_own_value_or_the_papers():
    own = {"epochs": Setting(int, smoke=2, gpu=50, paper=300, cpu=20, min=0)}
    assert resolve(own, profile="cpu", seed=0).epochs == 20
    assert resolve(SETTINGS, profile="cpu", seed=0).epochs == 300
    assert resolve(SETTINGS, profile="cpu", seed=0, epochs=4).epochs == 4
    with pytest.raises(ValueError, match="≥ 0"):
        resolve({"epochs": Setting(int, 2, 50, 300, cpu=-1, min=0)}, profile="cpu", seed=0)


def test_resolve_notebook_resolves_like_a_notebooks_parameters_cell():
    from tsrobust.params import resolve_notebook

    settings = {"epochs": Setting(int, smoke=1, cpu=2, gpu=3, paper=4, min=1),
                "lr": Setting(float, smoke=0.1, cpu=0.1, gpu=0.1, paper=0.1, min=0.0)}
    # papermill's parameters: a setting, one meant for another chapter, a cuda switch
    cfg = resolve_notebook(settings, "gpu", {"lr": 0.5, "teacher_epochs": 9, "cuda_mode": "fast"})
    assert cfg.as_dict() == {"profile": "gpu", "seed": 0, "epochs": 3, "lr": 0.5}
    assert resolve_notebook(settings, "cpu", {"seed": 4, "epochs": None}).as_dict() == {
        "profile": "cpu", "seed": 4, "epochs": 2, "lr": 0.1}
    with pytest.raises(ValueError, match="epochs"):
        resolve_notebook(settings, "cpu", {"epochs": 0})
