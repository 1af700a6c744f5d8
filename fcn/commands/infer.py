"""The infer command: segment images, folders, globs and videos with a run or an export.

`python main.py infer --run RUN_DIR INPUT... --out DIR`, RUN_DIR a training run or a folder made
by `python main.py export`. Each image is read as RGB (RGBA, grey and 16-bit are converted),
resized to the model's input size as in training (INTER_AREA), predicted in batches, and its
class probabilities are upsampled bilinearly to the original size. DIR gets per image
    <stem>.png        overlay: each class in the dataset's palette (KITTI: green road); for
                      multiclass datasets a legend strip below (--legend: the classes present,
                      all, none; videos list all classes so every frame keeps one size)
    <stem>_prob.png   (--save-prob) binary datasets: 8-bit positive-class (road) probability,
                      rint(p * 255)
    <stem>_mask.png   (--save-mask) class ids (KITTI: 0 not road, 1 road)
and per video <stem>.mp4, the overlay video at the source frame rate (with --save-prob or
--save-mask, the folders <stem>_prob/ and <stem>_mask/ get one PNG per frame). A GeoTIFF scene
(.tif, .tiff; --bands, --stretch) gets GeoTIFFs with its CRS, transform and size instead:
<stem>.tif, <stem>_prob.tif (float32, nodata NaN) and <stem>_mask.tif (nodata 255), read and
written block by block with --predict slide (fcn.geo). --polygons adds <stem>.geojson, a polygon
per connected region (--min-area, --simplify), in the scene's CRS or in pixels.

Every input is decoded once before anything is written, so a bad file stops the command with a
one-line error and no output; an input file is never overwritten.

The options (InferOptions) and the loops are in fcn.inference.infer, input collection and video
I/O in fcn.inference.media; this module parses the flags and calls them.
"""

from fcn import config as cfg
from fcn.inference.infer import InferOptions, run_inference


def add_arguments(parser):
    # Required and positional: written by hand, their values land in InferOptions too.
    parser.add_argument(
        "--run", metavar="RUN_DIR", required=True, help="training run folder or export folder"
    )
    parser.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="images, folders, globs or videos (mp4/avi)"
    )
    parser.add_argument("--out", metavar="DIR", required=True, help="folder for the results")
    cfg.add_arguments(parser, cls=InferOptions)


def run(args):
    """Entry point of `python main.py infer`; returns the exit code."""
    run_inference(InferOptions.from_args(args))
    return 0
