"""``garden segment-classic METHOD image.jpg --out overlay.png``: the lecture's unsupervised methods."""

from garden.console import note

COMMANDS = {
    "segment-classic": "unsupervised segmentation: k-means, mean-shift, SLIC, ...",
}


def add_commands(commands):
    from garden.segmentation.classical import METHODS

    p = commands.add_parser("segment-classic", help=COMMANDS["segment-classic"])
    p.add_argument("method", choices=METHODS, help="the segmentation method")
    p.add_argument("image", help="an image file (JPEG, PNG, ...)")
    p.add_argument("--out", required=True, help="where to write the overlay picture (PNG)")
    p.add_argument("--k", type=float, help="clusters for kmeans; scale k for felzenszwalb")
    p.add_argument("--region-size", type=int, help="superpixel size for slic (pixels)")
    p.add_argument("--boxes", type=int, default=50, help="proposals to draw for selective-search (default 50)")
    p.add_argument("--labels", metavar="PNG", help="also write the label map (16-bit PNG)")
    p.set_defaults(run=run_segment_classic)


def run_segment_classic(args):
    import cv2
    import numpy as np

    from garden._files import atomic_path, check_writable
    from garden.data.segmentation import read_image
    from garden.errors import UsageError
    from garden.segmentation.classical import segment
    from garden.segmentation.visualize import draw_boxes, draw_regions, save_image

    check_writable(args.out)
    if args.labels:
        check_writable(args.labels)
    options = {}
    if args.k is not None:
        if args.method not in ("kmeans", "felzenszwalb") or args.k <= 0:
            raise UsageError("--k takes a positive number, for kmeans or felzenszwalb")
        options["k"] = int(args.k) if args.method == "kmeans" else args.k
    if args.region_size is not None:
        if args.method != "slic" or args.region_size < 2:
            raise UsageError("--region-size takes an integer >= 2, for slic")
        options["region_size"] = args.region_size
    image = read_image(args.image)
    result = segment(image, args.method, **options)
    picture = draw_regions(image, result.labels)
    if len(result.boxes):
        picture = draw_boxes(picture, result.boxes[: args.boxes])
    save_image(args.out, picture)
    if args.labels:
        with atomic_path(args.labels) as temporary:
            cv2.imwrite(temporary, result.labels.astype(np.uint16))
    boxes = f", {len(result.boxes)} boxes (drew {min(args.boxes, len(result.boxes))})" if len(result.boxes) else ""
    note(f"{args.method}: {result.num_regions} regions{boxes} -> {args.out}")
