"""Model families, one file each; importing this package registers them all."""

from garden.models import alexnet, lenet, mobilenet  # noqa: F401
