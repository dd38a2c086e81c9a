"""Model families, one file each; importing this package registers them all."""

from garden.models import alexnet, densenet, googlenet, lenet, resnet, vgg  # noqa: F401
