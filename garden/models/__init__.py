"""Model families, one file each; importing this package registers them all."""

from garden.models import alexnet, lenet, small_cnn  # noqa: F401
import garden.ssl  # noqa: F401, E402  (the self-supervised methods, task "ssl")
