"""LeNet-5 (LeCun, Bottou, Bengio & Haffner, "Gradient-Based Learning Applied to Document
Recognition", Proc. IEEE 1998), on 32x32 single-channel digits.

C1 6@5x5 -> S2 pool -> C3 16@5x5 -> S4 pool -> C5 120@5x5 -> F6 84 -> output. C3 connects to
every S2 map (the paper's sparse connection table is a hardware-era detail), so the network has
61,706 parameters for 10 classes. Subsampling is average pooling and the squashing function tanh,
as in the paper; ``activation="relu"`` and ``pool="max"`` give the modern variant.
"""

from keras import layers

from garden.layers import conv_norm_act
from garden.models._common import classifier


@classifier(name="lenet5", input_shape=(32, 32, 1), num_classes=10)
def build_lenet5(inputs, *, activation="tanh", pool="avg", dropout=0.0):
    """LeNet-5 (LeCun et al., 1998): two conv-pool stages, C5, F6 and the classifier."""
    pooling_layer = {"avg": layers.AveragePooling2D, "max": layers.MaxPooling2D}[pool]
    x = conv_norm_act(inputs, 6, 5, padding="valid", norm=None, act=activation, name="c1")
    x = pooling_layer(2, name="s2")(x)
    features = {2: x}
    x = conv_norm_act(x, 16, 5, padding="valid", norm=None, act=activation, name="c3")
    x = pooling_layer(2, name="s4")(x)
    features[4] = x
    head = _lenet_head(activation, dropout)
    return features, head


def _lenet_head(activation, dropout):
    def head(x):
        x = conv_norm_act(x, 120, x.shape[1], padding="valid", norm=None, act=activation, name="c5")
        x = layers.Flatten(name="flatten")(x)
        if dropout:
            x = layers.Dropout(dropout, name="f6_dropout")(x)
        return layers.Dense(84, activation=activation, name="f6")(x)

    return head
