"""Settings of the fooling-circuit experiment: ``default`` (2 CPU cores, ~6 min) and
``paper`` (the paper's sizes; for a GPU/TPU)."""

from fvjax.reliability import paper_snapshot_steps

DEFAULT = {
    "model": "tiny-darknet",
    # Renders (training data for E, held-out test data, figures).
    "size": 64,                      # visualization side in pixels
    "steps": 128,                    # render steps
    "snapshots": [0, 2, 4, 8, 16, 32, 64, 128],  # kept for E's training / test data
    "units_per_call": 32,            # units per compiled render call
    "held_out_classes": 200,         # classes (photo + visualizations) never shown to E
    "train_units": 96,               # classes rendered for E's training data
    "train_seeds": 1,
    "test_units": 32,                # held-out classes rendered for E's test data
    "picture_train_units": 64,       # training photos used as picture targets for E's data
    "picture_test_units": 12,        # held-out photos as picture targets (E's test data)
    # E.
    "detector_features": [16, 32, 64, 128],
    "detector_input": 64,
    "detector_steps": 1500,
    "detector_batch": 64,
    "detector_lr": 2e-3,
    "augment_min_scale": [0.4, 0.85],  # smallest crop side: photos, renders
    "augment_render_transforms": 0.5,
    "test_augmented_views": 4,       # random views per held-out image for the augmented test
    # Circuit.
    "shift": 100,
    "k": 250.0,
    "offset": 100.0,
    "picture": "astronaut",          # skimage.data picture (public domain)
    "picture_size": 64,
    "picture_scale": 100.0,
    "similarity": "dot",
    # Figures.
    "figure_units": 6,
    "eval_size": 224,
}

PAPER = dict(
    DEFAULT,
    size=224,
    steps=512,
    snapshots=list(paper_snapshot_steps(4, 512, 15)),  # from step 4, as the paper
    units_per_call=100,
    train_units=800,
    train_seeds=4,
    test_units=200,
    picture_train_units=400,
    picture_test_units=100,
    detector_steps=5000,
    detector_batch=256,
    detector_lr=1e-3,
    figure_units=8,
)

# results/ used DEFAULT. STEP4 is the fix of issue 16 (results_step4/, 1412 s on 2 CPU cores
# shared with other jobs): E's data from step 4 on, as the paper (steps 0 and 2 are nearly
# grey and flatter E's test figures), denser at the end where E missed the picture target's
# last snapshot, 4x the picture renders, more E steps.
STEP4 = dict(
    DEFAULT,
    snapshots=[4, 8, 16, 32, 64, 96, 112, 128],
    picture_train_units=256,
    detector_steps=2500,
)

SCALES = {"default": DEFAULT, "step4": STEP4, "paper": PAPER}
