"""How long a run will take, said before it starts (`backends.core.timing`, `backends.expect`): the model, the records
a finished run leaves, the reference table a first visit starts from, and the line beside each tab's Run."""
from __future__ import annotations

import json

import pytest

import backends
from backends.core import timing
from backends.priors import auto_prior
from demo.launch import tab_specs

TAB_TASKS = {spec.task for spec in tab_specs()}


@pytest.fixture()
def records(monkeypatch):
    """A fresh record store (other tests' runs are not this test's)."""
    fresh = timing.Records()
    monkeypatch.setattr(timing, "RECORDS", fresh)
    return fresh


def test_a_timing_from_the_reports_splits_setup_from_steps():
    # started at 0; step 10 reported at 2.5 s, step 50 at 6.5 s: 0.1 s a step, 1.5 s before the first step
    t = timing.from_reports(0.0, (2.5, 10), (6.5, 50), work=123)
    assert t == timing.Timing(setup_s=pytest.approx(1.5), step_s=pytest.approx(0.1), steps=50, work=123)
    one = timing.from_reports(0.0, (2.0, 20), (2.0, 20))  # a single report: no setup can be told apart
    assert one.step_s == pytest.approx(0.1) and one.setup_s == 0.0
    assert timing.from_reports(0.0, (1.0, 0), (1.0, 0)) is None


def test_expectation_is_setup_steps_and_finish_at_the_recorded_pace_scaled_by_the_work(records):
    records.add("svg/vectorfusion", "icons", "cpu",
                timing.Timing(setup_s=2.0, step_s=0.05, steps=200, work=1000, finish_s=1.0))
    at = lambda steps, work: timing.expect("svg/vectorfusion", "icons", "cpu", steps, work)  # noqa: E731
    assert at(None, None) == timing.Expectation(pytest.approx(13.0), 200, "here")  # the recorded run again
    assert at(400, None).seconds == pytest.approx(23.0)
    assert at(400, 2000).seconds == pytest.approx(46.0)  # twice the work: every stage takes twice as long
    assert timing.expect("svg/csd", "icons", "cpu", None, None).source == "reference"
    rough = timing.expect("plugin/x", None, "cpu", 100, int(1e9))
    assert rough.source == "rough" and rough.seconds == pytest.approx(100.0)
    assert timing.expect("plugin/x", None, "cpu", None, int(1e9)) is None


def test_the_fixed_share_of_a_record_does_not_grow_with_the_work(records, tmp_path):
    """A step's overhead, tracing and writing files stay when the work doubles: half fixed, 13 s becomes 19.5 s; a
    run measured here (one run tells no share) keeps the reference's."""
    records.add("svg/vectorfusion", "icons", "cpu",
                timing.Timing(setup_s=2.0, step_s=0.05, steps=200, work=1000, finish_s=1.0, fixed=0.5))
    assert timing.expect("svg/vectorfusion", "icons", "cpu", None, 2000).seconds == pytest.approx(19.5)
    assert timing.expect("svg/vectorfusion", "icons", "cpu", None, 500).seconds == pytest.approx(9.75)
    ref = tmp_path / "ref.json"
    timing.write_reference({"svg/csd|icons|cpu": timing.Timing(1.0, 0.1, 10, 100, 0.0, fixed=0.8)}, "a CPU", ref)
    own = timing.Records(ref)
    own.add("svg/csd", "icons", "cpu", timing.Timing(setup_s=0.0, step_s=0.2, steps=10, work=100))
    assert own.get("svg/csd", "icons", "cpu") == (timing.Timing(0.0, 0.2, 10, 100, 0.0, fixed=0.8), "here")


def test_a_finished_run_is_measured_and_its_next_run_expected_from_it(records, tmp_path):
    settings = {"prompt": "a rocket", "steps": 40, "every": 10, "size": 32}
    assert backends.expect("image/sds", settings, prior="icons", device="cpu").source != "here"  # none yet
    result = backends.run_to_end("image/sds", settings, prior="icons", out_dir=tmp_path, device="cpu")
    model = timing.Timing.of(result.metadata["timings"])
    assert model.steps == 40 and model.step_s > 0 and model.work > 0
    again = backends.expect("image/sds", settings, prior="icons", device="cpu")
    assert again.source == "here" and again.steps == 40
    assert model.finish_s > 0  # the outputs after the last step are timed too
    assert again.seconds == pytest.approx(model.setup_s + 40 * model.step_s + model.finish_s)
    longer = backends.expect("image/sds", {**settings, "steps": 400}, prior="icons", device="cpu")
    assert longer.seconds == pytest.approx(model.setup_s + 400 * model.step_s + model.finish_s)
    bigger = backends.expect("image/sds", {**settings, "size": 64}, prior="icons", device="cpu")
    assert bigger.seconds > again.seconds  # four times the pixels


def test_the_reference_table_covers_every_tab_backend_at_this_cpus_default_prior():
    """A first visit on a CPU sees a measured figure for every method of every tab, not "not measured yet"."""
    rows = json.loads(timing.REFERENCE.read_text())
    assert "CPU" in rows["machine"]
    for task, names in backends.available().items():
        if task not in TAB_TASKS:
            continue
        for name in names:
            key = f"{task}/{name}"
            cls = backends.get(key)
            prior = auto_prior(cls.prior, "auto", "cpu") if cls.prior != "none" else None
            assert timing.Records.name(key, prior, "cpu") in rows["runs"], key
            assert timing.Timing(**rows["runs"][timing.Records.name(key, prior, "cpu")]).setup_s >= 0


def test_expect_refuses_what_the_run_refuses_and_leaves_out_unreadable_inputs(records, tmp_path):
    with pytest.raises(backends.InputError):
        backends.expect("svg/vectorfusion", {"steps": "many"}, device="cpu")
    with pytest.raises(backends.InputError):
        backends.expect("svg/vectorfusion", {}, prior="edits", device="cpu")  # a prior of the wrong kind
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    found = backends.expect("panorama/csd-edit", {}, inputs=[str(broken), str(tmp_path / "missing.png")],
                            device="cpu")
    assert found is not None and found.source == "reference"  # the example-sized figure


@pytest.fixture(scope="module")
def app_tabs():
    from demo.launch import build_app, parse_args

    return build_app(parse_args([])).tabs_by_name


def test_each_tab_says_how_long_its_defaults_take_before_run(app_tabs):
    for name, tab in app_tabs.items():
        text = tab.expect.value
        assert text.startswith("Expected time: **about "), (name, text)
        if tab.classes[tab.method_key].inputs in ("image", "video", "images"):
            assert "the size of the example's" in text, (name, text)


def test_the_tab_line_follows_the_settings_and_the_baseline(app_tabs, records):
    tab = app_tabs["svg"]
    values = {name: widget.value for key, name, widget in tab.panel_fields if key == tab.method_key}
    fields = ["a rocket"] + [values[name] if key == tab.method_key else widget.value
                             for key, name, widget in tab.panel_fields]
    records.add(tab.method_key, "icons", "cpu", timing.Timing(setup_s=1.0, step_s=0.05, steps=200, work=0))
    expect = tab.expected.expect_text
    line = expect(tab.method_key, "auto", 0, False, tab.baseline_key, "{}", *fields)
    # the steps the run will take: the icons prior's 200 over the profile's 150: 1 + 200 x 0.05 s
    assert line == "Expected time: **about 11 s** (measured on this machine).", line
    steps = [i for i, (key, name, _) in enumerate(tab.panel_fields) if key == tab.method_key and name == "steps"][0]
    longer = list(fields)
    longer[1 + steps] = 2000
    assert "about 101 s" not in expect(tab.method_key, "auto", 0, False, tab.baseline_key, "{}", *longer)
    assert "about 2 min" in expect(tab.method_key, "auto", 0, False, tab.baseline_key, "{}", *longer)
    both = expect(tab.method_key, "auto", 0, True, tab.baseline_key, "{}", *fields)
    assert "(method 11 s, baseline " in both, both
    assert expect(tab.method_key, "auto", 0, False, tab.baseline_key, "{}",
                  *(["a rocket"] + ["many" if i == steps else f for i, f in enumerate(fields[1:])])) == ""
