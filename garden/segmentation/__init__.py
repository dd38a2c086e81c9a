"""Semantic segmentation beyond the models: losses, metrics, classical methods and pictures.

- :mod:`garden.segmentation.losses`: pixel-wise cross-entropy with an ignore label, dice, focal;
- :mod:`garden.segmentation.metrics`: confusion matrix, mean IoU, pixel accuracy (NumPy and Keras);
- :mod:`garden.segmentation.classical`: the lecture's unsupervised methods behind one interface;
- :mod:`garden.segmentation.visualize`: colour-palette masks, overlays, prediction vs ground truth.
"""

IGNORE_LABEL = 255
