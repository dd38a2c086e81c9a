"""Growing past one device on existing engines: tf.distribute and keras.distribution.

- ``none``: one device (the GPU when there is one);
- ``mirrored``: ``tf.distribute.MirroredStrategy``, one replica per GPU of this machine (or
  ``cpu_replicas`` logical CPU devices, for trying it without GPUs);
- ``multiworker``: ``tf.distribute.MultiWorkerMirroredStrategy`` across machines named in
  ``TF_CONFIG``; every worker runs the same command;
- ``jax-data-parallel``: ``keras.distribution.DataParallel`` over all JAX devices.

``batch_size`` is always the global batch, split over the replicas.
"""

import contextlib
import json
import os

import keras

from garden.errors import GardenError

STRATEGIES = ("none", "mirrored", "multiworker", "jax-data-parallel")
NEEDS_BACKEND = {"mirrored": "tensorflow", "multiworker": "tensorflow", "jax-data-parallel": "jax"}


class Plan:
    """Where training runs: a scope to build the model in, the replica count, who writes files."""

    def __init__(self, name, strategy=None, replicas=1, worker=0, chief=True, processes=1):
        self.name, self.strategy, self.replicas = name, strategy, replicas
        self.worker, self.chief = worker, chief
        self.processes = processes  # processes that each feed their own share of every batch (JAX)

    @property
    def shard(self):
        """``(this process, processes)``: which share of each global batch this process reads."""
        return (self.worker, self.processes) if self.processes > 1 else (0, 1)

    def scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def close(self):
        if self.name == "jax-data-parallel":
            keras.distribution.set_distribution(None)


def check(name):
    """Raise if strategy ``name`` is unknown or needs another Keras backend."""
    if name not in STRATEGIES:
        raise GardenError(f"unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
    backend = NEEDS_BACKEND.get(name)
    if backend and keras.backend.backend() != backend:
        raise GardenError(f"--strategy {name} needs --backend {backend} (running {keras.backend.backend()})")


def prepare(name, batch_size, cpu_replicas=None):
    """Start strategy ``name``; call before any model is built."""
    check(name)
    if name == "none":
        return Plan(name)
    if name == "jax-data-parallel":
        if os.environ.get("KERAS_DISTRIBUTION_JOB_ADDRESSES"):
            keras.distribution.initialize()  # several hosts: addresses, count and id come from the environment
        import jax

        devices = keras.distribution.list_devices()
        _divisible(batch_size, len(devices), name)
        # Each process reads its own share of every batch (Batches' shard); Keras joins the shares.
        distribution = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
        keras.distribution.set_distribution(distribution)
        process, processes = jax.process_index(), jax.process_count()
        return Plan(name, replicas=len(devices), worker=process, chief=process == 0, processes=processes)
    import tensorflow as tf

    if name == "multiworker":
        worker, chief = _worker_role()
        check_patched_keras()
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        _patch_multiworker_reduce()
        _divisible(batch_size, strategy.num_replicas_in_sync, name)
        return Plan(name, strategy, strategy.num_replicas_in_sync, worker, chief)
    devices = tf.config.list_logical_devices("GPU")
    if not devices and cpu_replicas and cpu_replicas > 1:
        _split_cpu(tf, cpu_replicas)
    devices = devices or tf.config.list_logical_devices("CPU")
    strategy = tf.distribute.MirroredStrategy([d.name for d in devices])
    _divisible(batch_size, strategy.num_replicas_in_sync, name)
    return Plan(name, strategy, strategy.num_replicas_in_sync)


def build_before_fit(model, batch):
    """Build a compiled model from one NumPy batch, for ``MultiWorkerMirroredStrategy``.

    Keras 3.15's TensorFlow trainer builds a distributed model by all-reducing the first batch,
    which fails across workers (``PerReplica`` cannot become a tensor); building from a local
    batch first and skipping that step avoids it.
    """
    x, y = batch
    model._symbolic_build(data_batch=(x, y, None))
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None


# The Keras releases whose private trainer functions the multiworker path patches, tested.
PATCHED_KERAS = ("3.15.",)


def check_patched_keras(version=None):
    """``--strategy multiworker`` patches private Keras code (below): refuse a release it was not tested on."""
    version = version or keras.__version__
    if not version.startswith(PATCHED_KERAS):
        raise GardenError(
            f"--strategy multiworker patches Keras {', '.join(v + 'x' for v in PATCHED_KERAS)} internals and is "
            f"untested on Keras {version}: install keras=={PATCHED_KERAS[-1]}* or use jax-data-parallel"
        )


def _patch_multiworker_reduce():
    """Keras 3.15 reduces a step's scalar logs across workers with ``reduce("MEAN", axis=0)``, which
    fails on scalars (tensorflow/tensorflow#72388). The logs are loss and metric results, already
    synchronised between workers, so the first local value is the answer."""
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer.reduce_per_replica, "garden_patched", False):
        return
    original = trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction == "auto" and trainer._collective_all_reduce_multi_worker(strategy):
            reduction = "first"
        return original(values, strategy, reduction)

    reduce_per_replica.garden_patched = True
    trainer.reduce_per_replica = reduce_per_replica


def _split_cpu(tf, count):
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        current = len(tf.config.list_logical_devices("CPU"))
        if current != count:
            raise GardenError(
                f"cannot split the CPU into {count} devices after TensorFlow started ({current} now); "
                "use the garden command, which sets it up first"
            ) from None


def _divisible(batch_size, replicas, name):
    if batch_size % replicas:
        raise GardenError(f"--strategy {name}: batch size {batch_size} must be a multiple of the {replicas} replicas")


def _worker_role():
    """(worker index, is chief) from ``TF_CONFIG``; a missing or malformed one raises."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise GardenError("--strategy multiworker needs TF_CONFIG (see docs/training.md)")
    try:
        config = json.loads(text)
        cluster, task = config["cluster"], config["task"]
        kind, index = task["type"], int(task["index"])
    except (ValueError, KeyError, TypeError):
        raise GardenError('TF_CONFIG is not valid: expected {"cluster": {...}, "task": {"type", "index"}}') from None
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    offset = len(cluster.get("chief", ())) if kind == "worker" else 0
    return index + offset, chief
