"""The demo's last line read "report written to ... (40.1 s; model 0.0 s, attribution 3.2 s, ...)" although
training the model took 34 s: "model" was the section that tabulates its scores. The line now gives the
training (or reuse) time first and calls that section "model table"."""

from __future__ import annotations

from medlens.app.demo import timings_words


def test_the_training_time_is_said_and_the_model_table_is_not_taken_for_it():
    words = timings_words(40.1, 34.2, False, {"section:model_section": 0.01, "section:attribution_section": 3.2})
    assert words == "40.1 s; training the model 34.2 s, model table 0.0 s, attribution 3.2 s"
    assert timings_words(5.0, 0.3, True, {}) == "5.0 s; reusing the model 0.3 s"
