"""Model families, one file each; importing this package registers them all."""

from garden.models import alexnet, densenet, googlenet, lenet, resnet, vgg  # noqa: F401
from garden.models import inception_resnet_v2, mobilenet, mobilenet_v3, xception  # noqa: F401
from garden.models import deeplab, fcn, segnet, unet  # noqa: F401  (segmentation)
from garden.models import small_cnn  # noqa: F401  (the default self-supervised encoder)
import garden.ssl  # noqa: F401, E402  (the self-supervised methods, task "ssl")
