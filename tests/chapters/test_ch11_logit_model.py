"""Chapter 11: settings, the verification and thresholds at tiny sizes, and every claim row with
a planted run where it holds and one where it fails."""

import math

import numpy as np
import pytest

from tsrobust import results
from tsrobust.chapters import ch11_logit_model as ch
from tsrobust.params import PROFILES, resolve


@pytest.mark.parametrize("profile", PROFILES)
def test_every_profile_resolves(profile):
    cfg = resolve(ch.SETTINGS, profile=profile, seed=0)
    assert cfg.n_classes >= 3 and cfg.grid >= 11


def test_bad_parameters_fail_fast():
    with pytest.raises(ValueError, match="out of range"):
        resolve(ch.SETTINGS, profile="smoke", seed=0, eps_error=1.5)
    with pytest.raises(ValueError, match="not a profile"):
        resolve(ch.SETTINGS, profile="huge", seed=0)


def test_verification_finds_our_roots_and_not_the_printed_ones():
    v = ch.verification(check_n=(3,), check_betas=(3.5,), starts=30, seed=0)
    s = ch.verification_summary(v)
    assert s["misclassified"]["derived_max"] < 1e-6
    assert s["misclassified"]["derived_missing"] == 0
    assert s["misclassified"]["printed_min"] > 1e-2
    assert "| misclassified (derived) | 3 | 3.5 |" in ch.verification_table(v).text


def test_thresholds_at_n10():
    t = ch.thresholds(n_classes=10, threshold_ns=(10,), beta_max=10.0, grid=401)["main"]
    # one printed root is admissible from the pole of g± on: ln(N − 1)
    assert t["printed_either"] == pytest.approx(math.log(9), abs=1e-6)
    assert 2.6 < t["printed_both"] < 3.0  # not 3.5
    assert t["correct_derived_edge"] == pytest.approx(math.log(18))


# -- claim rows --------------------------------------------------------------------------------

def _verif(printed_distance):
    rows = []
    for case in ("correct", "misclassified (derived)", "misclassified (printed)"):
        rows.append({"case": case, "N": 10, "beta": 3.5, "root": "+",
                     "printed": [1.0] if "derived" not in case else None,
                     "derived": [1.0] if "printed" not in case else None,
                     "d_printed": printed_distance, "d_derived": 1e-9, "kind": "saddle",
                     "in_s_n": True, "n_numerical": 2})
    return {"rows": rows}


def _thr(both, derived=0.01):
    main = {"printed_both": both, "printed_either": math.log(9), "printed_plus": math.log(9),
            "printed_minus": both, "printed_plus_squared": math.log(9),
            "printed_minus_squared": both, "derived_any": derived, "correct_printed_plus": 2.2,
            "correct_derived_edge": math.log(18), "log_n_minus_1": math.log(9)}
    return {"n": 10, "main": main, "per_n": {"10": main}}


def _exact(on_boundary):
    gap = 0.0 if on_boundary else 0.1  # an interior minimum would stay above the infimum
    return {"beta": 3.5, "correct": {"loss": 1e-9 + gap, "infimum": 0.0,
                                     "on_boundary": on_boundary},
            "misclassified": {"loss": math.log(2) + gap, "infimum": math.log(2),
                              "on_boundary": on_boundary}}


def _surf(sign):
    return {"change_printed": np.array([[-1.0, sign * 0.5]]), "change_derived": np.array([[-2.0]])}


def _rows(printed_distance=1.0, both=2.775, derived=0.01, on_boundary=True, sign=-1,
          robust=None, paper_scale=True):
    return ch.claim_rows(_verif(printed_distance), _thr(both, derived), _exact(on_boundary),
                         _surf(sign), paper_scale=paper_scale, robust_mean_max_logit=robust)


def _verdict(rows, start):
    return next(r.verdict for r in rows if r.quantity.startswith(start))


def test_claim_formula_rows():
    assert _verdict(_rows(printed_distance=1e-8), "f± of Eq. 4") == "reproduced"
    assert _verdict(_rows(printed_distance=0.3), "f± of Eq. 4") == "differs"
    assert _verdict(_rows(printed_distance=1e-8), "g±, κ, ψ±") == "reproduced"
    assert _verdict(_rows(printed_distance=0.3), "g±, κ, ψ±") == "differs"
    assert _verdict(_rows(printed_distance=1e-8, paper_scale=False), "f± of Eq. 4") == "differs"


def test_claim_threshold_rows():
    assert _verdict(_rows(both=3.5), "misclassified inputs admit") == "reproduced"
    assert _verdict(_rows(both=2.775), "misclassified inputs admit") == "differs"
    assert _verdict(_rows(derived=3.48), "the same threshold from our") == "reproduced"
    assert _verdict(_rows(derived=0.01), "the same threshold from our") == "differs"


def test_claim_robust_logit_row():
    assert _verdict(_rows(robust=None), "robust networks") == results.INCONCLUSIVE
    assert _verdict(_rows(robust=3.3), "robust networks") == "reproduced"
    assert _verdict(_rows(robust=8.0), "robust networks") == "differs"


def test_claim_exact_loss_row():
    assert _verdict(_rows(on_boundary=True), "the exact cross-entropy") == "differs"
    assert _verdict(_rows(on_boundary=False), "the exact cross-entropy") == "direction holds"


def test_claim_gap_shrinks_row_is_a_sanity_check():
    assert _verdict(_rows(sign=-1), "adversarial perturbations shrink") == results.SANITY_PASSES
    assert _verdict(_rows(sign=1), "adversarial perturbations shrink") == results.SANITY_FAILS


def test_model_widget_holds_the_three_figures_as_images_and_no_output_widget():
    import ipywidgets as widgets

    box = ch.model_widget(resolve(ch.SETTINGS, profile="smoke", seed=0), grid=9)
    images = [w for w in box.children if isinstance(w, widgets.Image)]
    assert len(images) == 3 and all(bytes(i.value).startswith(b"\x89PNG") for i in images)
    assert not any(isinstance(w, widgets.Output) for w in box.children)
