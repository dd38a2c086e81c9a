"""The lecture's unsupervised segmentation methods behind one interface: ``segment(image, method)``.

Each method takes an RGB uint8 image and returns a :class:`Segmentation`: an ``H x W`` int32 label
map (one label per region, 0..n-1) and, for selective search, the proposed boxes ``(x, y, w, h)``.
OpenCV does the work wherever it has the algorithm.

- ``kmeans``: k-means clustering of per-pixel features ``[R, G, B, x, y]`` (Lloyd 1982; the
  position terms, weighted by ``spatial_weight``, make clusters compact), ``cv2.kmeans``.
- ``meanshift``: Comaniciu & Meer, "Mean Shift: A Robust Approach Toward Feature Space Analysis"
  (TPAMI 2002): ``cv2.pyrMeanShiftFiltering``, then connected regions of equal filtered colour.
- ``slic``: Achanta et al., "SLIC Superpixels" (TPAMI 2012), ``cv2.ximgproc`` (SLICO by default).
- ``felzenszwalb``: Felzenszwalb & Huttenlocher, "Efficient Graph-Based Image Segmentation"
  (IJCV 2004), ``cv2.ximgproc.segmentation.createGraphSegmentation``.
- ``watershed``: Beucher & Meyer (1993) marker-controlled flooding of the colour gradient, with
  markers at the flattest regions, ``cv2.watershed``.
- ``selective-search``: Uijlings et al., "Selective Search for Object Recognition" (IJCV 2013):
  hierarchical grouping of graph-based regions into box proposals,
  ``cv2.ximgproc.segmentation.createSelectiveSearchSegmentation``.
"""

from dataclasses import dataclass, field

import cv2
import numpy as np

from garden.errors import GardenError

METHODS = ("kmeans", "meanshift", "slic", "felzenszwalb", "watershed", "selective-search")


@dataclass
class Segmentation:
    """A label map (``H x W`` int32, regions 0..n-1) and, for selective search, boxes ``(x, y, w, h)``."""

    labels: np.ndarray
    method: str
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), "int32"))

    @property
    def num_regions(self):
        return int(self.labels.max()) + 1 if self.labels.size else 0


def segment(image, method, **options):
    """Segment an RGB uint8 ``image`` with ``method`` (one of :data:`METHODS`); ``options`` go to the method.

    >>> result = segment(image, "slic", region_size=16)
    >>> result.labels.shape == image.shape[:2]
    """
    if method not in METHODS:
        raise GardenError(f"unknown segmentation method {method!r}; choose one of {', '.join(METHODS)}")
    image = _check_image(image)
    function = _FUNCTIONS[method]
    try:
        result = function(image, **options)
    except TypeError as error:
        raise GardenError(f"{method}: {error}") from None
    labels, boxes = result if isinstance(result, tuple) else (result, None)
    segmentation = Segmentation(relabel(labels), method)
    if boxes is not None:
        segmentation.boxes = np.asarray(boxes, dtype="int32").reshape(-1, 4)
    return segmentation


def kmeans(image, k=4, spatial_weight=0.5, attempts=3, seed=0):
    """Cluster ``[R, G, B, w*x, w*y]`` (x and y scaled to 0..255) into ``k`` clusters."""
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype("float32")
    position = np.stack([xs * 255 / max(width - 1, 1), ys * 255 / max(height - 1, 1)], -1) * spatial_weight
    features = np.concatenate([image.astype("float32"), position], -1).reshape(-1, 5)
    cv2.setRNGSeed(seed)
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 30, 0.5)
    _, labels, _ = cv2.kmeans(features, int(k), None, criteria, attempts, cv2.KMEANS_PP_CENTERS)
    return labels.reshape(height, width)


def meanshift(image, spatial_radius=12, colour_radius=24, levels=1, tolerance=3, min_size=30):
    """Mean-shift filtering in joint space/colour, then flood fill: neighbours within ``tolerance`` join a region.

    The filter leaves thin seams of odd colours between modes; regions under ``min_size`` pixels
    are given to the nearest larger region.
    """
    filtered = cv2.pyrMeanShiftFiltering(np.ascontiguousarray(image), spatial_radius, colour_radius, maxLevel=levels)
    return absorb_small_regions(flood_regions(filtered, tolerance), min_size)


def absorb_small_regions(labels, min_size):
    """Relabel pixels of regions smaller than ``min_size`` with the label of the nearest pixel of a larger one."""
    from scipy.ndimage import distance_transform_edt

    sizes = np.bincount(labels.ravel())
    small = sizes[labels] < min_size
    if not small.any() or small.all():
        return labels
    _, (rows, cols) = distance_transform_edt(small, return_indices=True)
    return labels[rows, cols]


def flood_regions(image, tolerance=3):
    """Label map of 4-connected regions whose neighbouring colours differ by at most ``tolerance`` per channel."""
    height, width = image.shape[:2]
    mask = np.zeros((height + 2, width + 2), np.uint8)
    labels = np.full((height, width), -1, np.int32)
    difference = (tolerance,) * 3
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
    region = 0
    for y, x in zip(*np.nonzero(np.ones((height, width), bool))):
        if mask[y + 1, x + 1]:
            continue
        _, _, _, (left, top, w, h) = cv2.floodFill(image, mask, (int(x), int(y)), 0, difference, difference, flags)
        window = labels[top : top + h, left : left + w]
        window[(mask[top + 1 : top + h + 1, left + 1 : left + w + 1] == 1) & (window < 0)] = region
        region += 1
    return labels


def slic(image, region_size=20, ruler=10.0, iterations=10, algorithm="slico"):
    """SLIC superpixels (``algorithm`` ``slic``, ``slico`` or ``mslic``) on the CIELAB image."""
    from cv2 import ximgproc

    kinds = {"slic": ximgproc.SLIC, "slico": ximgproc.SLICO, "mslic": ximgproc.MSLIC}
    if algorithm not in kinds:
        raise GardenError(f"slic algorithm must be one of {', '.join(kinds)}, got {algorithm!r}")
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    superpixels = ximgproc.createSuperpixelSLIC(lab, kinds[algorithm], int(region_size), float(ruler))
    superpixels.iterate(int(iterations))
    superpixels.enforceLabelConnectivity(25)
    return superpixels.getLabels()


def felzenszwalb(image, k=300.0, sigma=0.5, min_size=50):
    """Graph-based segmentation: merge while the edge weight is below each region's internal difference + k/|C|."""
    from cv2.ximgproc import segmentation

    graph = segmentation.createGraphSegmentation(float(sigma), float(k), int(min_size))
    return graph.processImage(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def watershed(image, markers=None, flat_fraction=0.25, min_marker=20):
    """Flood the colour gradient from ``markers`` (HxW ints, 0 = unknown); by default from its flattest regions."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if markers is None:
        markers = _flat_markers(image, flat_fraction, min_marker)
    markers = np.asarray(markers, dtype="int32").copy()
    if markers.shape != image.shape[:2]:
        raise GardenError(f"markers are {markers.shape} but the image is {image.shape[:2]}")
    cv2.watershed(bgr, markers)
    # Pixels on a watershed line (-1) join the region of their largest neighbour label.
    lines = markers < 0
    grown = cv2.dilate(np.where(lines, 0, markers).astype("float32"), np.ones((3, 3), np.uint8)).astype("int32")
    markers[lines] = grown[lines]
    return markers


def _flat_markers(image, flat_fraction, min_marker):
    grey = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), (5, 5), 0).astype("float32")
    gradient = cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    # Flat: among the flattest ``flat_fraction`` of pixels, or under 5% of the strongest edge.
    threshold = max(np.quantile(gradient, flat_fraction), 0.05 * gradient.max())
    flat = (gradient <= threshold).astype("uint8")
    flat = cv2.morphologyEx(flat, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, markers, stats, _ = cv2.connectedComponentsWithStats(flat, connectivity=8)
    small = stats[:, cv2.CC_STAT_AREA] < min_marker
    small[0] = True
    markers[small[markers]] = 0
    if markers.max() == 0:
        markers[image.shape[0] // 2, image.shape[1] // 2] = 1
    return markers


def selective_search(image, mode="fast", max_boxes=200, max_side=500):
    """Box proposals by hierarchical grouping; the label map is the graph-based regions it starts from.

    Large images are searched at ``max_side`` pixels on their longer side and the boxes scaled back.
    """
    from cv2.ximgproc import segmentation

    if mode not in ("fast", "quality", "single"):
        raise GardenError(f"selective-search mode must be fast, quality or single, got {mode!r}")
    height, width = image.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    small = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    search = segmentation.createSelectiveSearchSegmentation()
    search.setBaseImage(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
    {
        "fast": search.switchToSelectiveSearchFast,
        "quality": search.switchToSelectiveSearchQuality,
        "single": search.switchToSingleStrategy,
    }[mode]()
    boxes = np.asarray(search.process(), dtype="float64").reshape(-1, 4)[: int(max_boxes)]
    boxes = np.round(boxes / scale).astype("int32")
    labels = felzenszwalb(image, k=150 * max(1.0, 1 / scale), sigma=0.8, min_size=50)
    return labels, boxes


def connected_regions(codes):
    """Label 4-connected patches of equal value in an integer map: ``H x W`` int32, 0..n-1."""
    from skimage.measure import label

    return label(np.asarray(codes) + 1, background=0, connectivity=1) - 1


def relabel(labels):
    """Map the labels to consecutive integers 0..n-1 in order of first value (int32)."""
    _, inverse = np.unique(np.asarray(labels), return_inverse=True)
    return inverse.reshape(np.shape(labels)).astype("int32")


def _check_image(image):
    image = np.asarray(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    if image.ndim != 3 or image.shape[-1] not in (3, 4) or image.dtype != np.uint8:
        raise GardenError(f"expected an RGB uint8 image, got shape {image.shape} and dtype {image.dtype}")
    if min(image.shape[:2]) < 2:
        raise GardenError(f"image of {image.shape[1]}x{image.shape[0]} pixels is too small to segment")
    return np.ascontiguousarray(image[..., :3])


_FUNCTIONS = {
    "kmeans": kmeans,
    "meanshift": meanshift,
    "slic": slic,
    "felzenszwalb": felzenszwalb,
    "watershed": watershed,
    "selective-search": selective_search,
}
