"""Model families, one file each; importing this package registers them all."""

from garden.models import alexnet, densenet, googlenet, lenet, mobilenet, resnet, vgg  # noqa: F401
from garden.models import deeplab, fcn, segnet, unet  # noqa: F401  (segmentation)
