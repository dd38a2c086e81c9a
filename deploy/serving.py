"""The batch-1 TensorFlow function that both writers convert (``deploy.tflite``, ``deploy.onnx_export``).

A fixed batch-1 signature lets the TFLite converter fold atrous convolutions into plain ones (no
``SPACE_TO_BATCH_ND``); a class map output is an ``argmax`` in the graph.
"""


def serving_module(model, input_shape, output="logits", uint8_input=False):
    """A batch-1 ``tf.function`` ``serve`` over ``model`` inside a ``tf.Module`` that tracks its variables.

    ``uint8_input``: the function takes uint8 pixels and scales them to [0, 1] itself.
    """
    import tensorflow as tf

    def serve(x):
        if uint8_input:
            x = tf.cast(x, tf.float32) * (1.0 / 255.0)
        y = model(x, training=False)
        if output == "class_map":
            y = tf.argmax(y, axis=-1, output_type=tf.int32)
        return y

    dtype = tf.uint8 if uint8_input else tf.float32
    module = tf.Module()
    module.model = model
    # Keras 3 wraps its variables; the converter freezes only the tf.Variables the module tracks.
    module.variables_ = [getattr(v, "value", v) for v in model.variables]
    module.serve = tf.function(serve, input_signature=[tf.TensorSpec((1, *input_shape), dtype, name="input")])
    return module
