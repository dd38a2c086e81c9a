"""Segmentation data on disk, and joint image + mask augmentation.

- :func:`voc`: the Pascal VOC layout (Everingham et al., "The PASCAL Visual Object Classes
  Challenge", IJCV 2010): ``JPEGImages/*.jpg``, ``SegmentationClass/*.png`` (palette PNGs whose
  palette indices are the class labels, 255 the object borders to ignore) and
  ``ImageSets/Segmentation/{train,val,trainval}.txt``.
- :func:`mask_folders`: any folder of images and a folder of masks paired by file stem; a mask is
  a single-channel (or palette) PNG of class indices, 255 meaning "ignore".
- :func:`augment_pair`: random horizontal flip, scale-and-crop and colour jitter, applied to the
  image and its mask together (nearest neighbour for the mask, ignore label in the padding).

Files are read when an example is asked for; every problem names the file it comes from.
"""

from pathlib import Path

import cv2
import numpy as np

from garden.data.base import IGNORE_LABEL, Examples
from garden.errors import GardenError, UnreadableFile

VOC_CLASSES = (
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
MASK_SUFFIXES = (".png", ".bmp", ".tif", ".tiff")


def voc_palette(count=256):
    """The VOC colour palette: label ``i`` -> RGB, by spreading the bits of ``i`` over the three channels."""
    palette = np.zeros((count, 3), dtype="uint8")
    for label in range(count):
        value, colour = label, [0, 0, 0]
        for shift in range(7, -1, -1):
            for channel in range(3):
                colour[channel] |= ((value >> channel) & 1) << shift
            value >>= 3
        palette[label] = colour
    return palette


def read_image(path):
    """An RGB uint8 image (grey images are given three channels); unreadable files raise GardenError."""
    if not Path(path).is_file():
        raise GardenError(f"image {path} does not exist")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise UnreadableFile(path, f"cannot read image {path}: missing, empty or not an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_mask(path):
    """A uint8 mask of class indices: palette PNGs give their indices, RGB masks in the VOC palette are decoded."""
    try:
        from PIL import Image

        with Image.open(path) as opened:
            mode = opened.mode
            mask = np.asarray(opened)
    except (OSError, ValueError) as error:
        raise UnreadableFile(path, f"cannot read mask {path}: {error}") from None
    if mode in ("P", "L", "I;16", "I"):
        if mask.max(initial=0) > 255:
            raise GardenError(f"mask {path} has labels above 255")
        return mask.astype("uint8")
    if mask.ndim == 3 and mask.shape[-1] in (3, 4):
        return _decode_palette(mask[..., :3], path)
    raise GardenError(f"mask {path} has mode {mode}: use a single-channel or palette PNG of class indices")


def _decode_palette(rgb, path):
    palette = voc_palette()
    codes = palette.astype("int64") @ np.array([65536, 256, 1])
    lookup = dict(zip(codes.tolist(), range(256)))
    pixels = rgb.reshape(-1, 3).astype("int64") @ np.array([65536, 256, 1])
    unique, inverse = np.unique(pixels, return_inverse=True)
    unknown = [code for code in unique.tolist() if code not in lookup]
    if unknown:
        colour = ((unknown[0] >> 16) & 255, (unknown[0] >> 8) & 255, unknown[0] & 255)
        raise GardenError(f"mask {path} has colour {colour}, which is not in the VOC palette")
    labels = np.array([lookup[code] for code in unique.tolist()], dtype="uint8")
    return labels[inverse].reshape(rgb.shape[:2])


class MaskedImages(Examples):
    """Image files with mask files: ``examples[i] -> (uint8 HxWx3 image, uint8 HxW mask)``, checked on read."""

    task = "segmentation"

    def __init__(self, images, masks, class_names, name="segmentation"):
        self.images, self.masks = list(images), list(masks)
        self.class_names, self.name = tuple(class_names), name

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        image, mask = read_image(self.images[index]), read_mask(self.masks[index])
        if image.shape[:2] != mask.shape:
            raise GardenError(
                f"mask {self.masks[index]} is {mask.shape[1]}x{mask.shape[0]} but image "
                f"{self.images[index]} is {image.shape[1]}x{image.shape[0]}"
            )
        check_labels(mask, self.num_classes, self.masks[index])
        return image, mask


def check_labels(mask, num_classes, source):
    """Raise GardenError naming ``source`` if ``mask`` holds a label outside ``0..num_classes-1`` (255 is fine)."""
    labels = np.unique(mask)
    bad = labels[(labels >= num_classes) & (labels != IGNORE_LABEL)]
    if bad.size:
        raise GardenError(f"mask {source} has label {int(bad[0])}, outside 0..{num_classes - 1} (255 = ignore)")


def _folder(path, what):
    path = Path(path)
    if not path.is_dir():
        raise GardenError(f"{what} folder {path} does not exist")
    return path


def voc(root, split="train"):
    """Pascal VOC segmentation examples of ``split`` (a list in ``ImageSets/Segmentation``), 21 classes."""
    root = _folder(root, "VOC")
    listing = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not listing.is_file():
        raise GardenError(f"VOC split list {listing} does not exist")
    stems = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
    if not stems:
        raise GardenError(f"VOC split list {listing} is empty")
    images = [root / "JPEGImages" / f"{stem}.jpg" for stem in stems]
    masks = [root / "SegmentationClass" / f"{stem}.png" for stem in stems]
    for path in images + masks:
        if not path.is_file():
            raise GardenError(f"{path} is listed in {listing} but does not exist")
    return MaskedImages(images, masks, VOC_CLASSES, name=f"voc-{split}")


def mask_folders(images_dir, masks_dir, class_names=None, num_classes=None):
    """Images paired with masks by file stem (``a.jpg`` with ``a.png``); every image needs its mask.

    Give ``class_names`` or ``num_classes``; with neither, the masks are read once to find the largest label.
    """
    images_dir, masks_dir = _folder(images_dir, "image"), _folder(masks_dir, "mask")
    images = sorted(p for p in images_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise GardenError(f"image folder {images_dir} has no images ({', '.join(IMAGE_SUFFIXES)})")
    masks = {p.stem: p for p in masks_dir.iterdir() if p.suffix.lower() in MASK_SUFFIXES}
    missing = [p for p in images if p.stem not in masks]
    if missing:
        raise GardenError(f"image {missing[0]} has no mask {masks_dir / (missing[0].stem + '.png')}")
    paired = [masks[p.stem] for p in images]
    if class_names is None:
        if num_classes is None:
            labels = [m[m != IGNORE_LABEL] for m in map(read_mask, paired)]
            num_classes = int(max(label.max(initial=0) for label in labels)) + 1
        class_names = tuple(f"class_{i}" for i in range(num_classes))
    return MaskedImages(images, paired, class_names, name=Path(images_dir).name)


def augment_pair(image, mask, rng, size, scale=(0.5, 2.0), flip=True, colour=0.2):
    """A random flip, scale-and-crop to ``size`` and colour jitter of ``(image, mask)``.

    The image is resized bilinearly, the mask by nearest neighbour; where the scaled image is
    smaller than ``size`` the image is padded with zeros and the mask with the ignore label.
    Colour jitter scales brightness, contrast and each channel by up to ``colour``.
    """
    height_out, width_out = (size, size) if np.isscalar(size) else size
    image, mask = np.asarray(image), np.asarray(mask)
    if image.shape[:2] != mask.shape:
        raise GardenError(f"image is {image.shape[1]}x{image.shape[0]} but its mask is {mask.shape[1]}x{mask.shape[0]}")
    if flip and rng.random() < 0.5:
        image, mask = image[:, ::-1], mask[:, ::-1]
    factor = rng.uniform(*scale) * max(height_out / image.shape[0], width_out / image.shape[1])
    height, width = max(1, round(image.shape[0] * factor)), max(1, round(image.shape[1] * factor))
    image = cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=cv2.INTER_LINEAR)
    mask = cv2.resize(np.ascontiguousarray(mask), (width, height), interpolation=cv2.INTER_NEAREST)
    if image.ndim == 2:
        image = image[..., None]
    pad_h, pad_w = max(0, height_out - height), max(0, width_out - width)
    if pad_h or pad_w:
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)))
        mask = np.pad(mask, ((0, pad_h), (0, pad_w)), constant_values=IGNORE_LABEL)
    top = int(rng.integers(0, image.shape[0] - height_out + 1))
    left = int(rng.integers(0, image.shape[1] - width_out + 1))
    image = image[top : top + height_out, left : left + width_out]
    mask = mask[top : top + height_out, left : left + width_out]
    if colour:
        pixels = image.astype("float32")
        mean = pixels.mean()
        contrast, brightness = rng.uniform(1 - colour, 1 + colour), rng.uniform(1 - colour, 1 + colour)
        cast = rng.uniform(1 - colour, 1 + colour, size=pixels.shape[-1])
        image = np.clip(((pixels - mean) * contrast + mean) * brightness * cast, 0, 255).astype("uint8")
    return np.ascontiguousarray(image), np.ascontiguousarray(mask)
