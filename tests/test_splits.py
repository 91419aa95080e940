from hypothesis import given, settings
from hypothesis import strategies as st

from emotion_models.data.splits import assign_splits

speakers = st.lists(
    st.tuples(st.sampled_from(["ravdess", "crema_d", "ck_plus"]), st.text(min_size=1, max_size=6)),
    min_size=0, max_size=80,
)


@settings(max_examples=200, deadline=None)
@given(speakers, st.floats(0.0, 0.5), st.floats(0.0, 0.4), st.integers(0, 10))
def test_no_speaker_is_in_two_splits_and_every_speaker_has_one(pairs, test_fraction, val_fraction, seed):
    assignment = assign_splits(pairs, test_fraction, val_fraction, seed)
    assert set(assignment) == set(pairs)
    assert set(assignment.values()) <= {"train", "val", "test"}
    # Order of discovery does not matter.
    assert assign_splits(list(reversed(pairs)), test_fraction, val_fraction, seed) == assignment


@given(st.integers(0, 1000))
def test_adding_a_corpus_leaves_existing_splits_unchanged(seed):
    ravdess = [("ravdess", f"actor{i:02d}") for i in range(1, 25)]
    before = assign_splits(ravdess, 0.15, 0.15, seed)
    after = assign_splits(ravdess + [("tess", "OAF"), ("tess", "YAF"), ("ck_plus", "S005")], 0.15, 0.15, seed)
    assert {k: after[k] for k in before} == before


def test_fractions_are_respected_and_train_is_never_empty():
    assignment = assign_splits([("ravdess", f"actor{i:02d}") for i in range(1, 25)], 0.15, 0.15, 42)
    counts = {s: list(assignment.values()).count(s) for s in ("train", "val", "test")}
    assert counts == {"test": 4, "val": 4, "train": 16}
    small = assign_splits([("x", "a"), ("x", "b"), ("x", "c")], 0.5, 0.5, 0)
    assert list(small.values()).count("train") >= 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.text(min_size=1, max_size=6), st.sampled_from(["train", "test"])), max_size=60),
       st.floats(0.0, 0.4), st.integers(0, 10))
def test_a_corpus_keeps_its_own_test_set(images, val_fraction, seed):
    """FER2013's Usage: its test images are its test set, and validation is drawn from its training images."""
    fixed = {("fer2013", name): split for name, split in images}
    others = [("ck_plus", f"S{i:03d}") for i in range(20)]
    assignment = assign_splits(list(fixed) + others, 0.15, val_fraction, seed, fixed)
    for speaker, split in fixed.items():
        assert (assignment[speaker] == "test") == (split == "test")
    pool = [s for s, split in fixed.items() if split == "train"]
    n_val = sum(assignment[s] == "val" for s in pool)
    assert n_val <= max(round(len(pool) * val_fraction), 1 if val_fraction else 0)
    if len(pool) >= 2:
        assert any(assignment[s] == "train" for s in pool)
    assert {k: assignment[k] for k in others} == assign_splits(others, 0.15, val_fraction, seed)
