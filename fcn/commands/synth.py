"""`python main.py synth`: write a synthetic dataset (KITTI layout by default; see --kind)."""

import os

from fcn.commands.demo import DEMO_COUNT, DEMO_DATA, add_scene_arguments, scene_options

KINDS = ("kitti", "streets", "footprints", "coco", "shapes", "voc", "labelme", "labelstudio")


def add_arguments(parser):
    parser.add_argument(
        "--kind",
        default="kitti",
        choices=KINDS,
        help="kitti: data_road/; streets: mapillary/ and cityscapes/; footprints, shapes: "
        "folder layout; coco: COCO instances layout; voc: VOC2012/; labelme: LabelMe JSON; "
        "labelstudio: a Label Studio JSON export",
    )
    parser.add_argument("--out", default=DEMO_DATA, help="folder to hold the dataset folder(s)")
    parser.add_argument("--count", type=int, default=DEMO_COUNT, help="training images")
    parser.add_argument("--test-count", type=int, default=12, help="test images")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same dataset")
    add_scene_arguments(parser, ", with --kind footprints; 0: none")


def run(args):
    from fcn.data import synth

    scenes = scene_options(args, args.kind)
    if args.kind == "kitti":
        summary = synth.generate_dataset(
            args.out, count=args.count, test_count=args.test_count, seed=args.seed
        )
        print(
            f"wrote {summary['train']} training and {summary['test']} test images "
            f"to {summary['root']}"
        )
        return 0
    summary = synth.generate(
        args.kind, args.out, count=args.count, test_count=args.test_count, seed=args.seed,
        **scenes,
    )  # fmt: skip
    val = f", {summary['val']} validation" if "val" in summary else ""
    roots = " and ".join(summary["roots"].values())
    print(
        f"wrote {summary['train']} training{val} and {summary['test']} test images "
        f"of kind {args.kind} to {roots}"
    )
    if scenes.get("scenes"):
        from fcn.data.synth import footprint_scenes

        where = os.path.join(summary["roots"]["footprints"], footprint_scenes.SCENES_DIR)
        side = scenes["scene_side"]
        print(f"and {scenes['scenes']} georeferenced {side}x{side} scenes to {where}")
    return 0
