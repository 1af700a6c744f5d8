"""`python main.py synth`: write a synthetic KITTI-layout dataset."""

from fcn.commands.demo import DEMO_COUNT, DEMO_DATA


def add_arguments(parser):
    parser.add_argument("--out", default=DEMO_DATA, help="folder to hold data_road/")
    parser.add_argument("--count", type=int, default=DEMO_COUNT, help="training images")
    parser.add_argument("--test-count", type=int, default=12, help="test images")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same dataset")


def run(args):
    from fcn.data import synth

    summary = synth.generate_dataset(
        args.out, count=args.count, test_count=args.test_count, seed=args.seed
    )
    print(
        f"wrote {summary['train']} training and {summary['test']} test images to {summary['root']}"
    )
    return 0
