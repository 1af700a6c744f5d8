"""`python main.py vgg`: build a VGG16 SavedModel with the Udacity interface."""

import argparse


def add_arguments(parser):
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--random", action="store_true", help="He-initialised random weights")
    source.add_argument(
        "--keras-h5",
        metavar="FILE",
        help="Keras ImageNet weights vgg16_weights_tf_dim_ordering_tf_kernels.h5",
    )
    parser.add_argument("--out", default="./data/vgg", help="SavedModel folder to create")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random weights")
    parser.add_argument("--width", type=float, default=1.0, help=argparse.SUPPRESS)


def run(args):
    from fcn.models import savedmodel

    weights = savedmodel.read_keras_h5(args.keras_h5) if args.keras_h5 else None
    savedmodel.save_vgg16(args.out, weights=weights, seed=args.seed, width=args.width)
    kind = f"ImageNet weights from {args.keras_h5}" if weights else "random He-initialised weights"
    print(
        f"wrote a VGG16 SavedModel (tag 'vgg16', {kind}) to {args.out}; "
        "it expects raw RGB 0..255 input"
    )
    return 0
