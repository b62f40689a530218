"""Theory check on discrete distributions (paper section 4.1, Appendix 9.6).

Soft-IntroVAE's equilibrium is d* = argmin_d KL(p_data || d) + gamma * H(d)
(Eq. 6 / 16) with the encoder equal to the true posterior (Theorem 3 / 6), under
Assumption 1 / 5. Here x and z are discrete and every expectation is exact:
- ``dstar``: d* (global, via KKT enumeration), its KKT check, Assumption 1,
  Lemma 4's encoder best response, the gamma sweep of Theorem 7, input checks.
- ``game``: exact ELBO (Eq. 8, 11), S-IntroVAE objectives (Eq. 4/5, 12/13),
  IntroVAE's hinge objectives (Eq. 2), a Monte-Carlo twin, and the gradient game.
- ``config``: ``TheoryConfig``, the notebook's parameters parsed and checked once.
- ``study``: the notebook's settings grid, metrics and claim checks.
- ``plots``: its figures and the ipywidgets d* slider.
"""
from .config import TheoryConfig
from .dstar import (
                    PDATA_NAMES,
                    assumption1_holds,
                    check_alpha,
                    check_gamma,
                    check_pdata,
                    dstar_objective,
                    dstar_path,
                    entropy,
                    kkt_report,
                    kl_divergence,
                    lemma4_kl,
                    make_pdata,
                    solve_dstar,
                    tv_distance,
)
from .game import (
                    MODES,
                    OBJECTIVES,
                    GameConfig,
                    exact_terms,
                    introvae_objectives,
                    mc_sintro_objectives,
                    run_game,
                    sintro_objectives,
)
from .study import (
                    Setting,
                    build_settings,
                    claims_ablation,
                    claims_dstar,
                    claims_game,
                    claims_introvae,
                    claims_markdown,
                    failure_lines,
                    history_distances,
                    metrics_report,
                    run_groups,
                    save_json,
                    setting_metrics,
                    settings_group,
)

__all__ = ["PDATA_NAMES", "MODES", "OBJECTIVES", "GameConfig", "Setting", "TheoryConfig", "assumption1_holds",
           "build_settings", "check_alpha", "check_gamma", "check_pdata", "claims_ablation",
           "claims_dstar", "claims_game", "claims_introvae", "claims_markdown", "failure_lines", "metrics_report",
           "dstar_objective", "dstar_path",
           "entropy", "exact_terms", "history_distances", "introvae_objectives", "kkt_report",
           "kl_divergence", "lemma4_kl", "make_pdata", "mc_sintro_objectives",
           "run_game", "run_groups", "save_json", "setting_metrics", "settings_group", "sintro_objectives",
           "solve_dstar", "tv_distance"]
