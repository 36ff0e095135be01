"""Configs: `_base_` inheritance, deep merge, typed `--set` overrides, errors that name file and key."""

from __future__ import annotations

import pytest

from detect.config import Config, config_to_dict, load_config
from eval.errors import InputError


@pytest.fixture
def configs(tmp_path):
    (tmp_path / "ladder").mkdir()
    (tmp_path / "base.yaml").write_text(
        "seed: 3\n"
        "data: {root: data/synth, image_size: 128}\n"
        "train: {iterations: 100, lr: 0.001, steps: [50, 80]}\n"
        "model: {backbone: {name: tiny, width: 32}}\n"
    )
    (tmp_path / "ladder" / "rung.yaml").write_text(
        "_base_: ../base.yaml\n"
        "model: {rung: fast_rcnn, backbone: {width: 16}}\n"
        "train: {lr: 0.01}\n"
    )
    return tmp_path


def test_defaults_are_a_valid_config():
    cfg = load_config(None)
    assert isinstance(cfg, Config) and (cfg.model.proposals, cfg.model.region_head) == ("rpn", "roi")


def test_base_is_relative_to_the_file_and_merges_deeply(configs):
    cfg = load_config(configs / "ladder" / "rung.yaml")
    assert cfg.seed == 3 and cfg.data.root == "data/synth"
    assert (cfg.model.proposals, cfg.model.region_head) == ("precomputed", "roi")  # an old-layout rung: upgraded
    assert cfg.model.backbone.name == "tiny" and cfg.model.backbone.width == 16  # merged, not replaced
    assert cfg.train.lr == 0.01 and cfg.train.iterations == 100 and cfg.train.steps == [50, 80]


def test_overrides_are_parsed_as_yaml_and_type_checked(configs):
    cfg = load_config(configs / "ladder" / "rung.yaml", ["train.lr=2e-3", "train.iterations=7",
                                                        "model.backbone.weights=null", "train.steps=[1, 2]"])
    assert cfg.train.lr == 0.002 and cfg.train.iterations == 7 and cfg.train.steps == [1, 2]
    assert cfg.model.backbone.weights is None
    assert isinstance(load_config(None, ["train.lr=1"]).train.lr, float)  # an int is a fine float
    with pytest.raises(InputError, match="train.iterations must be a whole number, got 'many'"):
        load_config(configs / "ladder" / "rung.yaml", ["train.iterations=many"])
    with pytest.raises(InputError, match="train.iterations must be a whole number, got 1.5"):
        load_config(None, ["train.iterations=1.5"])
    with pytest.raises(InputError, match=r"model.proposals must be one of 'rpn'"):
        load_config(None, ["model.proposals=yolo"])
    with pytest.raises(InputError, match=r"unknown key model.rung"):
        load_config(None, ["model.rung=yolo"])
    with pytest.raises(InputError, match="expected key=value"):
        load_config(None, ["train.lr"])


def test_unknown_key_names_the_file_and_suggests_the_close_match(configs):
    (configs / "ladder" / "typo.yaml").write_text("_base_: ../base.yaml\ntrain: {lrr: 0.1}\n")
    with pytest.raises(InputError) as info:
        load_config(configs / "ladder" / "typo.yaml")
    message = str(info.value)
    assert message.startswith(str(configs / "ladder" / "typo.yaml"))
    assert "unknown key train.lrr" in message and "did you mean train.lr?" in message
    with pytest.raises(InputError, match=r"^--set train.lrr: unknown key train.lrr — did you mean train.lr\?"):
        load_config(None, ["train.lrr=1"])


def test_mistyped_value_in_a_base_file_names_the_base_file(configs):
    (configs / "base.yaml").write_text("train: {batch_size: eight}\n")
    with pytest.raises(InputError) as info:
        load_config(configs / "ladder" / "rung.yaml")
    assert str(info.value).startswith(str(configs / "base.yaml")) and "train.batch_size" in str(info.value)


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("train: [1, 2\n", "invalid YAML at line"),
        ("- a\n- b\n", "must hold a mapping"),
        ("_base_: nowhere.yaml\n", "_base_ file not found: nowhere.yaml"),
        ("_base_: self.yaml\n", "_base_ chain loops"),
        ("data: 3\n", "data must be a mapping"),
    ],
)
def test_broken_files_are_refused_with_the_file_name(tmp_path, text, fragment):
    path = tmp_path / "self.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=fragment) as info:
        load_config(path)
    assert str(path) in str(info.value)


def test_missing_file():
    with pytest.raises(InputError, match="config file not found"):
        load_config("does/not/exist.yaml")


def test_config_round_trips_as_plain_data(configs):
    from detect.config import config_from_tree

    cfg = load_config(configs / "ladder" / "rung.yaml")
    assert config_from_tree(config_to_dict(cfg)) == cfg


# --------------------------------------------------------------------------- ranges (issue 11, item 7)


def _numeric_fields(cls=Config, prefix=""):
    """(dotted key, field, type) of every numeric leaf of the config tree, numbers in lists included."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from _numeric_fields(tp, f"{prefix}{f.name}.")
        elif any(t in (int, float) for t in _leaf_types(tp)):
            yield f"{prefix}{f.name}", f, tp


def _leaf_types(tp):
    import typing

    args = typing.get_args(tp)
    if typing.get_origin(tp) is typing.Literal or not args:
        return [tp]
    return [leaf for a in args for leaf in _leaf_types(a)]


def test_every_numeric_field_declares_a_range_and_its_default_lies_in_it():
    from detect.config_bounds import bounds_of, out_of_bounds

    defaults = config_to_dict(Config())
    fields = list(_numeric_fields())
    assert len(fields) > 50
    for key, f, _ in fields:
        bounds = bounds_of(f)
        assert bounds is not None, f"{key}: declare its range with bounded(...) (detect/config_bounds.py)"
        value = defaults
        for part in key.split("."):
            value = value[part]
        assert out_of_bounds(value, bounds) is None, key


@pytest.mark.parametrize("override, message", [
    ("train.iterations=0", "train.iterations must be at least 1, got 0"),
    ("train.iterations=-5", "train.iterations must be at least 1, got -5"),
    ("train.batch_size=0", "train.batch_size must be at least 1, got 0"),
    ("train.lr=-1", "train.lr must be greater than 0, got -1.0"),
    ("train.lr=.nan", "train.lr must be greater than 0, got nan"),
    ("data.image_size=0", "data.image_size must be at least 1, got 0"),
    ("train.checkpoint_every=0", "train.checkpoint_every must be at least 1, got 0"),
    ("test.score_thresh=2", "test.score_thresh must be between 0 and 1, got 2.0"),
    ("train.momentum=1", "train.momentum must be at least 0 and below 1, got 1.0"),
    ("model.rpn.anchors.sizes=[[16, 0]]", "every number in model.rpn.anchors.sizes must be at least 1, got 0"),
])
def test_out_of_range_overrides_name_the_key_and_the_option(override, message):
    with pytest.raises(InputError) as info:
        load_config(None, [override])
    key = override.split("=")[0]
    assert str(info.value).startswith(f"--set {key}: ") and message in str(info.value)


def test_out_of_range_value_in_a_base_file_names_that_file(configs):
    (configs / "base.yaml").write_text("train: {batch_size: 0}\n")
    with pytest.raises(InputError, match="train.batch_size must be at least 1") as info:
        load_config(configs / "ladder" / "rung.yaml")
    assert str(info.value).startswith(str(configs / "base.yaml"))


def test_edge_values_are_accepted():
    cfg = load_config(None, ["test.score_thresh=0", "train.grad_clip=null", "train.warmup_iterations=0",
                             "train.val_every=0", "model.rpn.nms_thresh=1", "train.iterations=1"])
    assert cfg.test.score_thresh == 0.0 and cfg.train.grad_clip is None and cfg.train.iterations == 1


def test_an_option_standing_for_a_key_obeys_the_same_range():
    from detect.config import check_setting

    assert check_setting("test.score_thresh", 1, "--score-thresh") == 1.0
    with pytest.raises(InputError, match=r"^--score-thresh: test.score_thresh must be between 0 and 1, got 2.0"):
        check_setting("test.score_thresh", 2.0, "--score-thresh")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "{}\n"])
def test_an_empty_config_file_is_refused_not_trained_on_defaults(tmp_path, text):
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match="the config file is empty, so it chooses no detector") as info:
        load_config(path)
    assert str(info.value).startswith(str(path))


@pytest.mark.parametrize("override, message", [
    ("model.rpn.bg_iou_thresh=0.8", "--set model.rpn.bg_iou_thresh: model.rpn.bg_iou_thresh (0.8) must not exceed "
                                    "model.rpn.fg_iou_thresh (0.7)"),
    ("model.roi_head.bg_iou_thresh_lo=0.6", "model.roi_head.bg_iou_thresh_lo (0.6) must not exceed "
                                            "model.roi_head.bg_iou_thresh_hi (0.5)"),
    ("model.crop.fg_iou_thresh=0.3", "--set model.crop.fg_iou_thresh: model.crop.bg_iou_thresh_hi (0.5) must not "
                                     "exceed model.crop.fg_iou_thresh (0.3)"),
])
def test_ordered_pairs_of_thresholds(override, message):
    with pytest.raises(InputError) as info:
        load_config(None, [override])
    assert message in str(info.value)
    load_config(None, ["model.rpn.bg_iou_thresh=0.7"])  # equal is fine


def test_every_ordered_pair_names_real_fields_and_holds_for_the_defaults():
    import dataclasses
    import typing

    def classes(cls):
        yield cls
        for tp in typing.get_type_hints(cls).values():
            if dataclasses.is_dataclass(tp):
                yield from classes(tp)

    checked = 0
    for cls in classes(Config):
        names = {f.name for f in dataclasses.fields(cls)}
        for low, high in getattr(cls, "ORDERED", ()):
            assert {low, high} <= names, (cls.__name__, low, high)
            assert getattr(cls(), low) <= getattr(cls(), high)
            checked += 1
    assert checked >= 5
