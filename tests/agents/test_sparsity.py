"""Sparsity configs and presets."""

from __future__ import annotations

import dataclasses

import pytest

from sparse_rl.agents.sparsity import PRESETS, SparsityConfig, resolve_sparsity


def test_presets_follow_the_papers() -> None:
    anf = resolve_sparsity("anf")
    assert (anf.algorithm, anf.density, anf.sparse_roles, anf.drop_fraction, anf.update_interval) == (
        "set", 0.2, ("input",), 0.05, 1000)
    assert anf.update_stop is None and anf.drop_schedule == "constant"
    assert (anf.init, anf.target_rule) == ("dense_fan_in", "online_mask")  # ANF's code: |w|, nn.Linear's init
    assert resolve_sparsity("all_layers", agent="sac").drop_fraction == 0.1
    assert resolve_sparsity("all_layers", agent="td3").drop_fraction == 0.05
    ds = resolve_sparsity("all_layers")
    assert ds.sparse_roles == ("input", "hidden")
    assert (ds.algorithm, ds.target_rule, ds.init) == ("set_signed", "polyak_prune", "dense_fan_in")  # Sokar's code
    assert resolve_sparsity("static").algorithm == "static"
    assert not resolve_sparsity("dense").is_sparse
    sf = resolve_sparsity("strength_filter")
    assert sf.algorithm == "strength_filter" and sf.algorithm_kwargs == {"sharpness": 3.0, "exploration": 0.1}
    assert set(PRESETS) == {"anf", "static", "all_layers", "rigl", "strength_filter", "fit_input", "dense"}


def test_fit_input_is_strength_filter_with_a_floor_of_connections_per_unit() -> None:
    fit, sf = resolve_sparsity("fit_input"), resolve_sparsity("strength_filter")
    assert fit.min_fan_in == 32 and sf.min_fan_in is None and resolve_sparsity("anf").min_fan_in is None
    assert dataclasses.replace(fit, min_fan_in=None) == sf  # every other setting is strength_filter's
    assert resolve_sparsity({"preset": "fit_input", "min_fan_in": 16}).min_fan_in == 16
    assert SparsityConfig.from_dict(fit.to_dict()) == fit
    # A config saved before the field existed loads with no floor.
    old = {key: value for key, value in sf.to_dict().items() if key != "min_fan_in"}
    assert SparsityConfig.from_dict(old) == sf


def test_preset_with_overrides() -> None:
    config = resolve_sparsity({"preset": "anf", "density": 0.05, "algorithm": "rigl"})
    assert (config.density, config.algorithm, config.sparse_roles) == (0.05, "rigl", ("input",))


def test_round_trip_through_dict() -> None:
    config = resolve_sparsity("rigl")
    assert SparsityConfig.from_dict(config.to_dict()) == config


def test_fractional_stop_is_resolved_against_the_training_length() -> None:
    config = resolve_sparsity("rigl")
    schedule = config.schedule(total_gradient_steps=10_000)
    assert schedule.stop == 8000 and schedule.decay == "cosine"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("anff", r"unknown sparsity preset 'anff' \(did you mean 'anf'\?\)"),
        ({"preset": "anf", "densty": 0.1}, r"unknown sparsity key 'densty' \(did you mean 'density'\?\)"),
        ({"algorithm": "magic"}, "unknown sparse training algorithm 'magic'"),
        ({"density": 1.5}, r"density must be in \(0, 1\]"),
        ({"sparse_roles": ["inputs"]}, "unknown layer role in sparse_roles 'inputs'"),
        ({"drop_fraction": 1.0}, r"drop_fraction must be in \[0, 1\)"),
        ({"update_interval": 0}, "interval must be an integer >= 1"),
        ({"update_stop": 1.5}, r"update_stop as a fraction of training must be in \(0, 1\]"),
        ({"preset": "fit_input", "min_fan_in": 0}, "min_fan_in must be an integer >= 1"),
        ({"preset": "fit_input", "min_fan_in": 8.5}, "min_fan_in must be an integer >= 1"),
        ({"preset": "fit_input", "min_fan_inn": 8}, r"did you mean 'min_fan_in'"),
    ],
)
def test_bad_sparsity_raises_clear_errors(spec: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_sparsity(spec)  # type: ignore[arg-type]


def test_another_algorithm_on_a_preset_drops_the_presets_algorithm_kwargs() -> None:
    assert resolve_sparsity("anf").algorithm_kwargs == {"regrow_dropped": True}
    assert resolve_sparsity({"preset": "anf", "algorithm": "rigl"}).algorithm_kwargs == {}
    assert resolve_sparsity({"preset": "anf", "algorithm": "set"}).algorithm_kwargs == {"regrow_dropped": True}
    kept = resolve_sparsity({"preset": "strength_filter", "algorithm": "set", "algorithm_kwargs": {}})
    assert kept.algorithm == "set" and kept.algorithm_kwargs == {}
