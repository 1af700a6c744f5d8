"""Drawing a KITTI scene's layout: the road plan (width, lanes and marks, verges, junction,
bend, visible length) of a category, and the camera that looks down it.
"""

from __future__ import annotations

import numpy as np

from fcn.data.synth.kitti_scene.world import (
    GRASS,
    GRAVEL,
    MARK_WHITE,
    MARK_YELLOW,
    SIDEWALK,
    Camera,
    Mark,
    Plan,
)


def road_plan(rng, category):
    """Road layout in metres: width, lanes and marks, verges, junction, bend and visible length."""
    marks = []
    if category == "umm":  # several marked lanes on a wide urban road
        half = rng.uniform(5.5, 8.0)
        bounds = np.linspace(-half, half, int(rng.integers(3, 5)) + 1)
        dash = (rng.uniform(9, 15), rng.uniform(3, 6), rng.uniform(0, 15))
        marks += [_centre_mark(rng, b, dash, MARK_WHITE) for b in bounds[1:-1]]
        lane = int(rng.integers(len(bounds) - 1))
        ego = (bounds[lane], bounds[lane + 1])
    elif category == "um":  # two marked lanes; we drive in the right one
        half = rng.uniform(3.8, 5.2)
        middle = rng.uniform(-0.3, 0.3)
        dash = (rng.uniform(9, 15), rng.uniform(3, 6), rng.uniform(0, 15))
        if rng.random() < 0.2:
            dash = None
        colour = MARK_YELLOW if rng.random() < 0.1 else MARK_WHITE
        marks.append(_centre_mark(rng, middle, dash, colour))
        ego = (middle, half)
    else:  # unmarked
        half = rng.uniform(3.2, 4.6)
        ego = (-half, half)
    if category != "uu" and rng.random() < 0.6:
        width, paint = rng.uniform(0.12, 0.2), rng.uniform(0.6, 1.0)
        marks += [Mark(s * (half - 0.3), width, MARK_WHITE, paint, None, True) for s in (-1, 1)]
    cam_x = 0.5 * (ego[0] + ego[1]) + rng.normal(0, 0.08 * (ego[1] - ego[0]))
    if category == "uu":
        cam_x = rng.uniform(-0.2, 0.4) * half
    sidewalk_odds = 0.5 if category == "uu" else 0.85
    sides = []
    for _ in range(2):
        u = rng.random()
        if u < sidewalk_odds:
            sides.append((SIDEWALK, rng.uniform(1.5, 4.0)))
        elif u < (1 + sidewalk_odds) / 2:
            sides.append((GRAVEL, rng.uniform(0.5, 1.5)))
        else:
            sides.append((GRASS, 0.0))
    junction = None
    if rng.random() < (0.15 if category == "um" else 0.4):
        near = rng.uniform(12, 35)
        junction = (int(rng.choice([-1, 1])), near, near + rng.uniform(6, 10))
    return Plan(
        half_width=half,
        marks=tuple(marks),
        ego=(float(ego[0]), float(ego[1])),
        cam_x=float(cam_x),
        sides=tuple(sides),
        junction=junction,
        far=rng.uniform(60, 160),
        bend=float(np.clip(rng.normal(0, 0.0015), -0.004, 0.004)),
    )


def _centre_mark(rng, x, dash, rgb):
    return Mark(float(x), rng.uniform(0.12, 0.18), rgb, rng.uniform(0.55, 1.0), dash, False)


def place_camera(rng, height, width, plan):
    return Camera(
        height=height,
        width=width,
        focal=width * rng.uniform(0.55, 0.62),  # KITTI: about 720 px on 1242 columns
        horizon=height * rng.uniform(0.36, 0.5),
        centre=width * (0.5 + rng.normal(0, 0.04)),
        cam_x=plan.cam_x,
        bend=plan.bend,
    )
