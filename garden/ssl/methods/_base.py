"""What every self-supervised method shares: the encoder, the fit contract and the EMA target.

A method is a ``keras.Model`` whose ``call(images)`` makes the pretext outputs (views, tiles,
patches...) and whose ``compute_loss`` turns them into one scalar with a loss from
``garden.ssl.losses``; so ``model.compile(optimizer); model.fit(images)`` trains it on TensorFlow,
JAX or PyTorch alike, without labels. ``model.encoder`` is the part kept afterwards: a functional
model from float RGB images in [0, 1] to one feature vector per image.
"""

import functools
import inspect
import math

import keras
from keras import ops

from garden.errors import GardenError
from garden.ssl.views import ViewRecipe, random_resized_crop


class SSLModel(keras.Model):
    """Base class: ``encoder`` (kept after pre-training), ``ssl_loss(outputs)`` (the method's loss)."""

    def __init__(self, *, backbone="small_cnn", input_shape=(32, 32, 3), seed=0, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.image_shape = tuple(input_shape)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.crop_scale = None  # the pretext tasks set it: see crop_in_training

    def new_encoder(self, input_shape=None, pooling="avg", any_size=False):
        """A fresh ``backbone`` encoder for ``input_shape`` (the images' by default): see ``build_encoder``.

        ``any_size=True`` leaves height and width open (tiles and patches smaller than the image).
        """
        shape = tuple(input_shape or self.image_shape)
        return build_encoder(self.backbone, (None, None, shape[-1]) if any_size else shape, pooling=pooling)

    def crop_in_training(self, images, training):
        """A random resized crop of ``crop_scale`` of each image's area, in training only (no flip).

        The pretext tasks' augmentation: without it, an encoder pre-trained on a few thousand small
        images learns their exact pixels (RotNet and colorization on digits: see docs/ssl.md).
        """
        if not (self.crop_scale and training):
            return images
        return random_resized_crop(images, self.crop_scale, flip=False, seed=self.seed_generator)

    def ssl_loss(self, outputs):
        raise NotImplementedError

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        loss = self.ssl_loss(y_pred)
        extra = self.losses
        if extra:
            loss = loss + ops.sum(ops.stack(extra))
        return loss

    def build_now(self):
        """Create every variable by one call on two blank images (needed before copying weights)."""
        self(ops.zeros((2, *self.image_shape)), training=False)
        return self


def method(cls):
    """Decorator: the builder of a method takes its constructor keywords, ``SSLModel``'s and ``name``.

    The decorated function holds only the docstring (the method's paper and options); the builder
    returns ``cls(**options).build_now()``.
    """

    def decorate(documented):
        name = documented.__name__.removeprefix("build_")
        parameters = {}
        for klass in (k for k in cls.__mro__ if issubclass(k, SSLModel) and "__init__" in vars(k)):
            for p in inspect.signature(klass.__init__).parameters.values():
                if p.name != "self" and p.kind is not p.VAR_KEYWORD:
                    parameters.setdefault(p.name, p.replace(kind=p.KEYWORD_ONLY))
        parameters = list(parameters.values())
        signature = inspect.Signature(
            [*parameters, inspect.Parameter("name", inspect.Parameter.KEYWORD_ONLY, default=name)]
        )

        @functools.wraps(documented)
        def build(**options):
            arguments = signature.bind(**options)
            arguments.apply_defaults()
            return cls(**arguments.arguments).build_now()

        build.__signature__ = signature
        return build

    return decorate


def build_encoder(backbone, input_shape, pooling="avg"):
    """A registered classification model ``backbone`` without its classifier, as an encoder.

    ``create_model(backbone, include_top=False, pooling="avg", input_shape=...)``; ``pooling=None``
    keeps the last feature map (for dense pretext tasks such as colorization).
    """
    from garden.registry import UnknownModelError, create_model, get_entry

    try:
        entry = get_entry(backbone)
    except UnknownModelError as error:
        raise GardenError(f"backbone: {error}") from None
    if entry.task != "classification":
        raise GardenError(f"backbone {backbone!r} is a {entry.task} model; pick a classification model")
    try:
        return create_model(backbone, include_top=False, pooling=pooling, input_shape=tuple(input_shape))
    except ValueError as error:
        size = "x".join(str(s) for s in input_shape)
        raise GardenError(f"backbone {backbone!r} cannot be built at {size}: {str(error).splitlines()[0]}") from None


def recipe(views, default):
    """A ``ViewRecipe`` from ``None`` (the method's default), a recipe, or a dict of changes to it."""
    if views is None:
        return default
    if isinstance(views, ViewRecipe):
        return views
    if isinstance(views, dict):
        return default.updated(**views)
    raise GardenError(f"views must be a ViewRecipe or a dict of its fields, got {type(views).__name__}")


def check_crop_scale(crop_scale):
    """``None`` or a ``(low, high)`` area fraction with ``0 < low <= high <= 1``, as a tuple."""
    if crop_scale is None:
        return None
    try:
        low, high = (float(value) for value in crop_scale)
    except (TypeError, ValueError):
        raise GardenError(f"crop_scale must be two numbers (low, high), got {crop_scale!r}") from None
    if not 0.0 < low <= high <= 1.0:
        raise GardenError(f"crop_scale must satisfy 0 < low <= high <= 1, got {crop_scale!r}")
    return low, high


def check_square(input_shape, method):
    if len(input_shape) != 3 or input_shape[0] != input_shape[1]:
        raise GardenError(f"{method} needs square images (height == width), got input_shape {tuple(input_shape)}")


def momentum_schedule(step, total_steps, base):
    """BYOL's target decay ``1 - (1 - base) (cos(pi k / K) + 1) / 2``: ``base`` at step 0, 1 at K.

    Grill et al. (2020), Sec. 3.2. Works on tensors and on Python numbers.
    """
    progress = ops.minimum(ops.cast(step, "float32") / float(max(total_steps, 1)), 1.0)
    return 1.0 - (1.0 - base) * (ops.cos(math.pi * progress) + 1.0) / 2.0


class MomentumTarget:
    """An EMA copy of ``online`` layers, updated inside the forward pass (so it works under ``jit``).

    Mixin for BYOL and MoCo: ``self.online_layers`` / ``self.target_layers`` are parallel lists of
    identically built layers; ``self.momentum`` is the base decay and ``self.total_steps`` the length
    of the cosine schedule. The target's variables are marked non-trainable (no gradient, no
    optimizer slot) while its layers stay in training mode, so its batch norms normalise with the
    batch statistics, as in BYOL.
    """

    def add_ema_step(self):
        """The step counter of the momentum schedule (call in ``__init__``, before the model is built)."""
        self.ema_step = self.add_weight(shape=(), initializer="zeros", trainable=False, name="ema_step")

    def build_now(self):
        """Build every variable, then start the target as a frozen copy of the online layers."""
        super().build_now()
        self.init_target()
        return self

    def init_target(self):
        """Freeze the target and copy the online weights into it (after the model is built)."""
        for target in self.target_layers:
            for variable in target.weights:
                variable.trainable = False
        for online, target in zip(self.online_layers, self.target_layers):
            target.set_weights(online.get_weights())

    def update_target(self):
        """``target <- m target + (1 - m) online``, with ``m`` from the cosine schedule."""
        momentum = momentum_schedule(self.ema_step, self.total_steps, self.momentum)
        for online, target in zip(self.online_layers, self.target_layers):
            for t, o in zip(target.weights, online.weights):
                t.assign(momentum * t + (1.0 - momentum) * ops.stop_gradient(ops.cast(o, t.dtype)))
        self.ema_step.assign(self.ema_step + 1.0)
