"""garden-edge: the on-device camera demo (LiteRT + OpenCV + NumPy only, no TensorFlow).

Runs a ``.tflite`` segmentation or classification model on a camera, video, image, folder or
stream, draws the overlay with per-stage timing, and shows it in a window, writes it to a video,
serves it as MJPEG, or benchmarks it. See docs/edge.md.

This package imports nothing from TensorFlow, Keras, ``garden`` or ``deploy``, so a Raspberry Pi
needs only ``pip install ai-edge-litert numpy opencv-python``.
"""

__version__ = "0.1.0"
